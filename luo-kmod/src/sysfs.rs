// SPDX-License-Identifier: GPL-2.0

//! The sysfs group `/sys/kernel/liveupdate` with its attributes `state`, `generation`,
//! `flavour` and `transitions`.
//!
//! The group is a user of the generic `kernel::sysfs` abstraction (built as part of this module
//! out of tree, in `rust/kernel/sysfs.rs` in the tree): attributes whose `show` reads the
//! orchestrator through the group's data, a [`View`], and [`StateGroup`], which registers the
//! group under `/sys/kernel` for exactly its lifetime and hands the orchestrator the notifiers
//! of `transitions` and `state`. The bytes shown come from `show.rs` of `luo-sysfs-abi`, the
//! names and modes from its `path.rs`.

use crate::kernel_sysfs::{
    Attribute,
    AttributeOperations,
    Kobject,
    Registration,
    ShowBuffer, //
};
use kernel::{prelude::*, sync::static_lock_class};

use crate::orchestrator::{
    self,
    Notifiers,
    View, //
};
use crate::path::{
    FLAVOUR,
    GENERATION,
    GROUP_NAME,
    STATE,
    TRANSITIONS, //
};
use crate::State;

/// `state`: the current state's word and a newline; notified on every change.
struct StateFile;

impl AttributeOperations for StateFile {
    type Data = View;

    fn show(view: &View, buffer: &mut ShowBuffer<'_>) -> Result {
        // kernfs sampled its event counter just before this call; `state` issues the read
        // barrier that pairs with the setter's write barrier (see `StateCell`).
        match view.state() {
            // The module is unloading (`orchestrator::retire`): the interface is gone.
            State::Undefined => Err(ENODEV),
            state => buffer.write_with(|rest| crate::show(state, rest)),
        }
    }
}

/// `generation`: this kernel's live-update generation in decimal and a newline; fixed while
/// the module is loaded.
struct GenerationFile;

impl AttributeOperations for GenerationFile {
    type Data = View;

    fn show(view: &View, buffer: &mut ShowBuffer<'_>) -> Result {
        if view.state() == State::Undefined {
            // The module is unloading, as for `state`.
            return Err(ENODEV);
        }
        buffer.write_with(|rest| crate::show_generation(view.generation(), rest))
    }
}

/// `flavour`: `standalone` or `observer` and a newline; fixed while the module is loaded.
struct FlavourFile;

impl AttributeOperations for FlavourFile {
    type Data = View;

    fn show(view: &View, buffer: &mut ShowBuffer<'_>) -> Result {
        if view.state() == State::Undefined {
            // The module is unloading, as for `state`.
            return Err(ENODEV);
        }
        buffer.write_with(|rest| crate::show_flavour(view.flavour(), rest))
    }
}

/// `transitions`: the changes of state since the orchestrator started, in decimal and a
/// newline; notified on every change, just before `state`.
struct TransitionsFile;

impl AttributeOperations for TransitionsFile {
    type Data = View;

    fn show(view: &View, buffer: &mut ShowBuffer<'_>) -> Result {
        // One load of the word that holds the count and the state together, after the read
        // barrier, as for `state`.
        match view.transitions() {
            // The module is unloading, as for `state`.
            (_, State::Undefined) => Err(ENODEV),
            (transitions, _) => {
                buffer.write_with(|rest| crate::show_transitions(transitions, rest))
            }
        }
    }
}

// Each `show` above has one of `luo-sysfs-abi`'s `show` functions render straight into the
// page: at most a word or a `u64` in decimal and a newline (`SHOW_MAX_LEN` and the like), far
// below the page's size.

// Each file has a lockdep class of its own, as a C attribute's `static` would.
static STATE_ATTRIBUTE: Attribute<View> =
    Attribute::new::<StateFile>(STATE.name, STATE.mode, static_lock_class!());
static GENERATION_ATTRIBUTE: Attribute<View> =
    Attribute::new::<GenerationFile>(GENERATION.name, GENERATION.mode, static_lock_class!());
static FLAVOUR_ATTRIBUTE: Attribute<View> =
    Attribute::new::<FlavourFile>(FLAVOUR.name, FLAVOUR.mode, static_lock_class!());
static TRANSITIONS_ATTRIBUTE: Attribute<View> =
    Attribute::new::<TransitionsFile>(TRANSITIONS.name, TRANSITIONS.mode, static_lock_class!());
/// In the order of `path::ATTRIBUTES`.
static ATTRIBUTES: [&Attribute<View>; 4] = [
    &STATE_ATTRIBUTE,
    &GENERATION_ATTRIBUTE,
    &FLAVOUR_ATTRIBUTE,
    &TRANSITIONS_ATTRIBUTE,
];

/// The registration of `/sys/kernel/liveupdate`.
///
/// # Invariants
///
/// `registration` is `Some` until `Drop` takes it to remove the group at the right moment.
pub(crate) struct StateGroup {
    registration: Option<Registration<View, 4>>,
}

impl StateGroup {
    /// Creates `/sys/kernel/liveupdate` and its files, and from then on the orchestrator
    /// notifies `transitions` and `state` at every change. Fails with `EEXIST` when the
    /// directory already exists (`preflight` checks that first, so only a race gets here).
    pub(crate) fn register() -> Result<Self> {
        let kernel = Kobject::kernel().ok_or(ENOENT)?;
        // `EEXIST` when another orchestrator took the name after `preflight` looked; module
        // init logs the failure.
        let registration = Registration::new(
            kernel,
            GROUP_NAME,
            &ATTRIBUTES,
            orchestrator::view(),
            GFP_KERNEL,
        )?;
        orchestrator::watch(Notifiers {
            transitions: registration.notifier(&TRANSITIONS_ATTRIBUTE)?,
            state: registration.notifier(&STATE_ATTRIBUTE)?,
        });
        // INVARIANT: `registration` is `Some`.
        Ok(Self {
            registration: Some(registration),
        })
    }
}

impl Drop for StateGroup {
    /// Unregisters so that every poller of `state` or `transitions` wakes and learns the file
    /// is gone.
    ///
    /// The orchestrator retires first: `show` answers `ENODEV` from then on, and its notify
    /// wakes the pollers asleep now. A poller that reads that `ENODEV` and polls again before
    /// the removal would sleep again (its event counter is current), and kernfs wakes no one
    /// when it removes a file without mmap or release. So once the group is gone, both files
    /// are notified once more through the notifiers `retire` hands back: that poll wakes, and
    /// kernfs answers it, and every later poll, with `POLLERR | POLLPRI` at once, because the
    /// node is no longer active.
    fn drop(&mut self) {
        let notifiers: Option<Notifiers> = orchestrator::retire();
        // Removes the group; kernfs drains running `show` calls before this returns.
        drop(self.registration.take());
        if let Some(notifiers) = notifiers {
            notifiers.notify();
        }
    }
}
