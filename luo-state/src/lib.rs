//! The single source of truth of the v3 Live Update Orchestrator: its states and events with
//! their uapi numbers and words, the transition rules, the `/dev/liveupdate` ioctl ABI, and the
//! [`StateCell`] that publishes a new state with the ordering the sysfs poll protocol needs.
//!
//! The [`record`] module defines the handover record that crosses a kexec in kexec handover
//! (KHO) memory, with its decoder and the boot it gives.
//!
//! The kernel module compiles `state.rs`, `event.rs`, `transition.rs`, `ioctl.rs`, `cell.rs`,
//! `record.rs` and `sync.rs` from this very directory (see `luo-kmod/src/luo.rs`), so those
//! files use nothing but `core`. [`StateSet`] uses `bitflags` and exists for userspace only.

#![no_std]

#[cfg(test)]
extern crate std;

mod cell;
mod event;
pub mod ioctl;
pub mod observed;
pub mod record;
mod set;
mod state;
mod sync;
mod transition;

pub use cell::StateCell;
pub use event::{Event, UnknownEvent};
pub use record::{Arrival, Damage, Handover, Record, RecordError};
pub use set::{ParseStateSetError, StateSet};
pub use state::{State, UnknownState};
pub use transition::{next_state, TransitionError};
