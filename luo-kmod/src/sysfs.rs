// SPDX-License-Identifier: GPL-2.0

//! The sysfs group `/sys/kernel/liveupdate` with its attributes `state`, `generation`,
//! `flavour` and `transitions`.
//!
//! The group is a user of the generic `kernel::sysfs` abstraction (built as part of this module
//! out of tree, in `rust/kernel/sysfs.rs` in the tree): static attributes whose `show` reads
//! the orchestrator, and [`StateGroup`], which registers the group under `/sys/kernel` for
//! exactly its lifetime and hands the orchestrator the notifiers of `transitions` and
//! `state`. The bytes shown
//! come from `show.rs` of `luo-sysfs-abi`, the names and modes from its `path.rs`.

use crate::kernel_sysfs::{
    Attribute,
    AttributeList,
    AttributeOperations,
    Group,
    Kobject,
    Registration, //
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*, //
};

use crate::orchestrator::{
    self,
    Notifiers, //
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

#[vtable]
impl AttributeOperations for StateFile {
    fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        // kernfs sampled its event counter just before this call; `current` issues the read
        // barrier that pairs with the setter's write barrier (see `StateCell`).
        match orchestrator::current() {
            // The module is unloading (`orchestrator::retire`): the interface is gone.
            State::Undefined => Err(ENODEV),
            // `None` is unreachable: a page holds every word.
            state => crate::show(state, page).ok_or(EINVAL),
        }
    }
}

/// `generation`: this kernel's live-update generation in decimal and a newline; fixed while
/// the module is loaded.
struct GenerationFile;

#[vtable]
impl AttributeOperations for GenerationFile {
    fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        if orchestrator::current() == State::Undefined {
            // The module is unloading, as for `state`.
            return Err(ENODEV);
        }
        // `None` is unreachable: a page holds every number.
        crate::show_generation(orchestrator::generation(), page).ok_or(EINVAL)
    }
}

/// `flavour`: `standalone` or `observer` and a newline; fixed while the module is loaded.
struct FlavourFile;

#[vtable]
impl AttributeOperations for FlavourFile {
    fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        if orchestrator::current() == State::Undefined {
            // The module is unloading, as for `state`.
            return Err(ENODEV);
        }
        // `None` is unreachable: a page holds every word.
        crate::show_flavour(orchestrator::flavour(), page).ok_or(EINVAL)
    }
}

/// `transitions`: the changes of state since the orchestrator started, in decimal and a
/// newline; notified on every change, just before `state`.
struct TransitionsFile;

#[vtable]
impl AttributeOperations for TransitionsFile {
    fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        // One load of the word that holds the count and the state together, after the read
        // barrier, as for `state`.
        match orchestrator::transitions() {
            // The module is unloading, as for `state`.
            (_, State::Undefined) => Err(ENODEV),
            // `None` is unreachable: a page holds every number.
            (transitions, _) => crate::show_transitions(transitions, page).ok_or(EINVAL),
        }
    }
}

static STATE_ATTRIBUTE: Attribute<StateFile> = Attribute::new(STATE.name, STATE.mode);
static GENERATION_ATTRIBUTE: Attribute<GenerationFile> =
    Attribute::new(GENERATION.name, GENERATION.mode);
static FLAVOUR_ATTRIBUTE: Attribute<FlavourFile> = Attribute::new(FLAVOUR.name, FLAVOUR.mode);
static TRANSITIONS_ATTRIBUTE: Attribute<TransitionsFile> =
    Attribute::new(TRANSITIONS.name, TRANSITIONS.mode);
/// In the order of `path::ATTRIBUTES`.
static ATTRIBUTES: AttributeList<4> = AttributeList::new([
    STATE_ATTRIBUTE.to_ref(),
    GENERATION_ATTRIBUTE.to_ref(),
    FLAVOUR_ATTRIBUTE.to_ref(),
    TRANSITIONS_ATTRIBUTE.to_ref(),
]);
static GROUP: Group = Group::new(GROUP_NAME, &ATTRIBUTES);

/// The registration of `/sys/kernel/liveupdate`.
///
/// # Invariants
///
/// `registration` is `Some` until `Drop` takes it to remove the group at the right moment.
pub(crate) struct StateGroup {
    registration: Option<Registration>,
}

impl StateGroup {
    /// Creates `/sys/kernel/liveupdate` and its files, and from then on the orchestrator
    /// notifies `transitions` and `state` at every change. Fails with `EEXIST` when the
    /// directory already exists (`preflight` checks that first, so only a race gets here).
    pub(crate) fn register() -> Result<Self> {
        let kernel = Kobject::kernel().ok_or(ENOENT)?;
        // `EEXIST` when another orchestrator took the name after `preflight` looked; module
        // init logs the failure.
        let registration = Registration::new(kernel, &GROUP)?;
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
