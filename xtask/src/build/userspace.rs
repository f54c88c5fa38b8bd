//! `cargo build` for the programs the guests run (luoctl, the guest tests, the workloads, the
//! bench).
//!
//! The scenarios and the guest scripts name those programs under the workspace's `target/`,
//! which the guests see through the host's root. So the build goes there whatever
//! `CARGO_TARGET_DIR` says: with a developer's own target directory, the guests would
//! otherwise run an older build left in `target/`, or find none.

use std::process::Command;

use crate::build::cache;

/// `cargo build --quiet` in the workspace, into its `target/`.
pub fn cargo_build() -> Command {
    let workspace = cache::workspace();
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--quiet"])
        .env("CARGO_TARGET_DIR", workspace.join("target"))
        .current_dir(workspace);
    cargo
}
