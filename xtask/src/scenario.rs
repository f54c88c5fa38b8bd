//! What the guests are made to do: the kernel tests, the live updates across kexec with their
//! failure paths, the tests of luo built in, luo beside mainline's orchestrator, the live update
//! under systemd as PID 1, and the demo with its timeline.
//!
//! Scenarios take the kernels and binaries of [`crate::build`] (and the in-tree kernel of
//! [`crate::series`]) and boot them with [`crate::guest`].

pub mod builtin;
pub mod demo;
pub mod kernel_tests;
pub mod lines;
pub mod liveupdate;
pub mod mainline;
// luoctl's JSON records, as the timeline reads them: the types live with luoctl's tests, which
// read the agent's own records with them.
#[path = "../../luoctl/tests/records/mod.rs"]
pub mod records;
// The example workloads' lines: the programs print them, the timeline parses them.
#[path = "../../luo-user/examples/shared/report.rs"]
pub mod report;
pub mod systemd;
pub mod timeline;

/// The shell helpers of the scripts that luo-guest-init runs (`mount_debugfs`, `wait_for`),
/// put before each of them, after the variables the host sets.
pub const SCRIPT_LIB: &str = include_str!("../../tests/guest-scripts/lib.sh");

/// A failed test's `report`, followed by `command`, which runs that test alone.
pub fn rerun_alone(report: &str, command: &str) -> String {
    format!("{report}\nrerun it alone: {command}")
}
