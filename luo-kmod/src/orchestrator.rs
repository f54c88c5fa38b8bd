// SPDX-License-Identifier: GPL-2.0

//! The orchestrator's state and its one setter.
//!
//! Every change of state, whatever triggers it (an ioctl, a kexec reboot, the test hook), goes
//! through [`change`]: under one lock it reads the current state, asks the caller for the next
//! one, publishes it, logs it and notifies sysfs, all before the triggering call returns, so a
//! read of `/sys/kernel/liveupdate/state` right after an ioctl returns shows the new word.
//! Readers ([`current`]) take no lock: the [`StateCell`] orders them against the notify.

use kernel::{prelude::*, sync::global_lock};

use crate::{boot_state, next_state, sysfs, Event, State, StateCell, TransitionError};

/// The current state. `Undefined` only until [`init`] runs, before any interface exists.
static STATE: StateCell = StateCell::new(State::Undefined);

global_lock! {
    // SAFETY: `init` initialises the lock, and module init calls it before it registers any
    // interface that could reach `change`.
    unsafe(uninit) static TRANSITION: Mutex<()> = ();
}

/// Sets up the lock and the boot state from the handover `generation` (0: none).
///
/// Module init calls this exactly once, first, before it registers any interface.
pub(crate) fn init(generation: u64) {
    // SAFETY: Module init runs once per load and calls this function once, before any
    // interface that takes the lock exists; a new load gets fresh statics.
    unsafe { TRANSITION.init() };
    let boot = boot_state(handover_found(generation));
    // No reader exists yet, so this is the initial value rather than a change to notify.
    STATE.publish(boot);
}

/// Whether the previous kernel handed over a live update.
///
/// v3 finds its own kexec handover (KHO) data. KHO needs `kexec_file_load`, which fails in our
/// QEMU guests (see `Documentation/design.md`), so the handover is a marker on the next
/// kernel's command line, `luo.handover=GENERATION`, which only `luoctl kexec` writes and only
/// from `prepared`; `modprobe` (or the caller of `insmod`) passes it to the `handover`
/// parameter. A cold boot has no marker, so generation 0 means an ordinary boot.
fn handover_found(generation: u64) -> bool {
    generation != 0
}

/// The current state, read without the lock (sysfs `show`, `GET_STATE`).
pub(crate) fn current() -> State {
    STATE.observe()
}

/// The one setter: moves from the current state to what `decide` returns for it.
///
/// When `decide` refuses, nothing changes and its error is returned. Otherwise the new state is
/// published, logged and notified to sysfs pollers before this returns.
pub(crate) fn change<E>(decide: impl FnOnce(State) -> Result<State, E>) -> Result<State, E> {
    let _guard = TRANSITION.lock();
    let from = STATE.observe();
    let to = decide(from)?;
    // The cell's write barrier orders this store before the notify's counter increment.
    STATE.publish(to);
    pr_info!("Switched from [{}] to [{}]\n", from.word(), to.word());
    sysfs::notify_state();
    Ok(to)
}

/// Takes the orchestrator away before its sysfs file goes: publishes `Undefined`, which `show`
/// answers with `ENODEV`, and notifies.
///
/// kernfs does not wake a sleeping `poll` when a file is removed, so without this a watcher
/// asleep on `state` would sleep forever after an unload. The notify wakes every poller; the
/// read that follows fails with `ENODEV` (from `show` now, or from kernfs once the file is
/// removed), and a later `poll` returns at once because the event counter moved. The cell
/// orders the store before the notify exactly as for a transition.
pub(crate) fn retire() {
    let _guard = TRANSITION.lock();
    STATE.publish(State::Undefined);
    sysfs::notify_state();
}

/// Applies an event the kernel raises itself (the freeze), by the transition table alone.
pub(crate) fn raise(event: Event) -> Result<State, TransitionError> {
    change(|from| next_state(from, event))
}
