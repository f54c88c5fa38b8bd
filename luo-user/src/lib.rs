//! Follow and drive a Linux live update from userspace.
//!
//! - [`StateFile`] reads the orchestrator's state attribute in sysfs on demand.
//! - [`Watcher`] follows it with the kernfs poll protocol and reports each observed
//!   [`Change`]; [`Watcher::wait_for`] waits for a set of states. [`AsyncWatcher`] (feature
//!   `tokio`) does the same inside a tokio runtime.
//! - [`Control`] drives the orchestrator through its control device: prepare, cancel, finish.
//! - [`generation()`] reads how many live updates the machine went through since a cold boot.
//! - [`transitions()`] reads how many changes of state there were since boot, and [`Snapshot`]
//!   reads that count and the state together, exactly paired, so a watcher can tell how many
//!   changes it missed between two reads ([`Snapshot::missed_since`]).
//! - [`Follower`] keeps following when the file goes away and comes back (module unloaded and
//!   loaded again), as `tail -F` does.
//! - [`hooks`] runs programs per state, run-parts style, and [`agent`] is the hooks agent that
//!   cancels on a failed `prepared` hook and finishes after the `updated` hooks.
//! - [`kexec`] loads the next kernel with `kexec_file_load(2)` and reboots into it: the live
//!   update itself. The module hands the state over in kexec handover (KHO) memory.
//!
//! States, events and the ioctl ABI come from `luo-state`; paths and the strict parser of the
//! attribute from `luo-sysfs-abi`.
//!
//! # Notifications coalesce
//!
//! The kernel announces a change by waking pollers; the watcher then reads the current word.
//! Two transitions between two reads are one wake, and the read shows only the last state: a
//! watcher sees observed states, not every transition, and a state held only briefly can be
//! missed. Each [`Change`] therefore carries both the previous and the new state. The
//! transition counter counts every change, so [`Snapshot`]s taken at two reads say how many
//! changes came in between.
//!
//! # Files that are not in sysfs
//!
//! Paths are overridable (containers, tests). A regular file has no `POLLPRI`, so when
//! `fstatfs` says the file is not on sysfs or a cgroup file system the watcher follows it with
//! inotify on its directory ([`Wakeup::Inotify`]: rewrites, renames over it, removal), or, on
//! file systems where inotify does not see every change, re-reads it at an interval
//! ([`Wakeup::Interval`], by default [`DEFAULT_INTERVAL`]).
//!
//! # Other kernfs files
//!
//! The watcher is generic over a [`Decode`] implementation, so the same protocol follows any
//! kernfs file, such as a cgroup's `cgroup.events`.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use luo_user::{StateSet, Watcher};
//!
//! let mut watcher = Watcher::open_default()?;
//! println!("now {}", watcher.current());
//! match watcher.wait_for(StateSet::PREPARED, Some(Duration::from_secs(30)))? {
//!     Some(state) => println!("reached {state}"),
//!     None => println!("still {} after 30s", watcher.current()),
//! }
//! # Ok::<(), luo_user::Error>(())
//! ```

pub mod agent;
#[cfg(feature = "tokio")]
mod async_watch;
mod control;
mod dir_watch;
mod error;
mod flavour;
mod follow;
mod generation;
pub mod hooks;
pub mod keeper;
mod kernfs;
pub mod kexec;
pub mod session;
mod state_file;
mod transitions;
mod watch;

#[cfg(feature = "tokio")]
pub use async_watch::{AsyncWatcher, Changes};
pub use control::Control;
pub use error::{ContentError, Error, Op, Result};
pub use flavour::{Flavour, flavour, flavour_beside, flavour_path_beside};
pub use follow::{FOLLOW_RETRY, Followed, Follower};
pub use generation::{generation, read_generation};
pub use kernfs::{DEFAULT_INTERVAL, KernfsFile, LIVENESS_PERIOD, MIN_INTERVAL, Wakeup};
pub use luo_state::{Event, State, StateSet};
pub use luo_sysfs_abi::ParseError;
pub use state_file::StateFile;
pub use transitions::{
    SNAPSHOT_ATTEMPTS, Snapshot, TransitionCount, read_transitions, transitions,
    transitions_path_beside,
};
pub use watch::{Change, Decode, Watcher};
