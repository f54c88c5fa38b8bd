//! Follow and drive a Linux live update from userspace.
//!
//! - [`StateFile`] reads the orchestrator's state attribute in sysfs on demand.
//! - [`Watcher`] follows it with the kernfs poll protocol and reports each observed
//!   [`Change`]; [`Watcher::wait_for`] waits for a set of states. [`AsyncWatcher`] (feature
//!   `tokio`) does the same inside a tokio runtime.
//! - [`Control`] drives the orchestrator through its control device: prepare, cancel, finish.
//! - [`handover`] reads and writes the live update marker on the kernel command line
//!   (`luo.handover=GENERATION`), and [`kexec`] performs the live update kexec with it.
//!
//! States, events and the ioctl ABI come from `luo-state`; paths and the strict parser of the
//! attribute from `luo-sysfs-abi`.
//!
//! # Notifications coalesce
//!
//! The kernel announces a change by waking pollers; the watcher then reads the current word.
//! Two transitions between two reads are one wake, and the read shows only the last state: a
//! watcher sees observed states, not every transition, and a state held only briefly can be
//! missed. Each [`Change`] therefore carries both the previous and the new state.
//!
//! # Files that are not in sysfs
//!
//! Paths are overridable (containers, tests). A regular file has no change notification, so
//! when `fstatfs` says the file is not on sysfs or a cgroup file system the watcher falls back
//! to re-reading it at an interval ([`Wakeup::Interval`], by default [`DEFAULT_INTERVAL`]).
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

#[cfg(feature = "tokio")]
mod async_watch;
mod control;
mod error;
pub mod handover;
mod kernfs;
pub mod kexec;
mod state_file;
mod watch;

#[cfg(feature = "tokio")]
pub use async_watch::AsyncWatcher;
pub use control::Control;
pub use error::{ContentError, Error, Op, Result};
pub use kernfs::{DEFAULT_INTERVAL, KernfsFile, LIVENESS_PERIOD, MIN_INTERVAL, Wakeup};
pub use luo_state::{Event, State, StateSet};
pub use luo_sysfs_abi::ParseError;
pub use state_file::StateFile;
pub use watch::{Change, Decode, Watcher};
