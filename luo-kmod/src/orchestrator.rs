// SPDX-License-Identifier: GPL-2.0

//! The orchestrator's state and its one setter.
//!
//! Every change of state, whatever triggers it (an ioctl, a kexec reboot, the test hook), goes
//! through [`change`]: under one lock it reads the current state, asks the caller for the next
//! one, publishes it, logs it and notifies sysfs, all before the triggering call returns, so a
//! read of `/sys/kernel/liveupdate/state` right after an ioctl returns shows the new word.
//! Readers ([`current`]) take no lock: the [`StateCell`] orders them against the notify.
//!
//! The notifier of `state` is kept under the same lock: the sysfs group hands it over once its
//! files exist ([`watch`]) and takes it back when it goes ([`retire`]).

use crate::kernel_sysfs::Notifier;
use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        global_lock,
    },
};

use crate::kho::{self, Incoming, NoRecord, Outgoing};
use crate::{next_state, Arrival, Damage, Event, Record, State, StateCell, TransitionError};

/// The current state. `Undefined` only until [`Running::start`] runs, before any interface
/// exists.
static STATE: StateCell = StateCell::new(State::Undefined);

/// This kernel's live-update generation: set by [`Running::start`] before any interface exists
/// and never changed while the module is loaded, so readers need no ordering beyond the
/// registration of the interface they read it through.
static GENERATION: Atomic<u64> = Atomic::new(0);

/// What every change updates in the same critical section: the handover records, and the
/// pollers of `state`.
struct Records {
    /// The record this kernel leaves for the next one; `None` when KHO is off.
    outgoing: Option<Outgoing>,
    /// The previous kernel's record while this boot is `updated`, to mark it at `finish`.
    incoming: Option<Incoming>,
    /// The notifier of `/sys/kernel/liveupdate/state`, while the file exists.
    notifier: Option<Notifier>,
}

impl Records {
    const EMPTY: Self = Self {
        outgoing: None,
        incoming: None,
        notifier: None,
    };
}

global_lock! {
    // SAFETY: `Running::start` initialises the lock, and module init calls it before it
    // registers any interface that could reach `change`.
    unsafe(uninit) static TRANSITION: Mutex<Records> = Records::EMPTY;
}

/// The orchestrator, set up for the module's lifetime: dropping it removes the outgoing record
/// from KHO, so a kexec after an unload carries no record of a module that is gone.
///
/// # Invariants
///
/// [`TRANSITION`] is initialised while a `Running` exists; module init creates one, once.
pub(crate) struct Running(());

impl Running {
    /// Sets up the lock, decides the boot state from the previous kernel's record, and
    /// registers this kernel's record with KHO.
    ///
    /// Module init calls this exactly once, first, before it registers any interface.
    pub(crate) fn start() -> Result<Self> {
        // SAFETY: Module init runs once per load and calls this function once, before any
        // interface that takes the lock exists; a new load gets fresh statics.
        unsafe { TRANSITION.init() };
        let (arrival, incoming) = arrive();
        let outgoing = if kho::enabled() {
            Some(Outgoing::register(Record::new(
                arrival.state,
                arrival.generation,
            ))?)
        } else {
            pr_warn!(
                "kexec handover (KHO) is off: the next kernel cannot tell a live update from a \
                 plain kexec; boot with kho=on (or CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y)\n"
            );
            None
        };
        // No reader exists yet, so these are initial values rather than changes to notify.
        GENERATION.store(arrival.generation, Relaxed);
        STATE.publish(arrival.state);
        *TRANSITION.lock() = Records {
            outgoing,
            incoming,
            notifier: None,
        };
        // INVARIANT: The lock was initialised above.
        Ok(Self(()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // By the type invariant the lock is initialised. Every interface that changes the state
        // is gone by now, so the records are dropped with nothing left to rewrite them.
        let records = core::mem::replace(&mut *TRANSITION.lock(), Records::EMPTY);
        drop(records);
    }
}

/// How this kernel came up, from the previous kernel's record, with one log line saying why
/// when it is not a live update; and the record itself while the boot is `updated`.
fn arrive() -> (Arrival, Option<Incoming>) {
    let incoming = match Incoming::find() {
        Ok(incoming) => incoming,
        Err(NoRecord::NotKhoBoot) => {
            pr_info!(
                "Not a live update: no kexec handover data (a cold boot, a kexec_load, or KHO off \
                 in the previous kernel)\n"
            );
            return (Arrival::COLD, None);
        }
        Err(NoRecord::Absent) => {
            pr_info!(
                "Not a live update: the previous kernel left no luo record in its kexec \
                 handover (luo was not loaded there)\n"
            );
            return (Arrival::COLD, None);
        }
        Err(NoRecord::Failed(err)) => {
            pr_err!("Not a live update: cannot read the handover record ({err:?})\n");
            return (Arrival::COLD, None);
        }
    };
    match incoming.read() {
        Err(reason) => {
            pr_err!("Not a live update: handover record refused: {reason}\n");
            (Arrival::COLD, None)
        }
        Ok(handover) => {
            let arrival = handover.arrival();
            if arrival.state == State::Updated {
                (arrival, Some(incoming))
            } else {
                // `normal` is also what `finish` marks in this boot, for a later load.
                pr_info!(
                    "Not a live update: the handover record says [{}], not [frozen] (a plain \
                     kexec, or a live update already finished in this boot)\n",
                    handover.state.word()
                );
                (arrival, None)
            }
        }
    }
}

/// This kernel's live-update generation (sysfs `generation`).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Relaxed)
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
    let mut records = TRANSITION.lock();
    let from = STATE.observe();
    let to = decide(from)?;
    // The record follows the state in the same critical section, so at the kexec jump it says
    // the state at the jump: a CANCEL that wins the lock before the jump leaves `normal`.
    if let Some(outgoing) = records.outgoing.as_mut() {
        outgoing.write(Record::new(to, generation()));
    }
    // After `finish` the live update is over: a later load in this boot must start `normal`.
    if to == State::Normal {
        if let Some(mut incoming) = records.incoming.take() {
            incoming.mark(Record::new(State::Normal, generation()));
        }
    }
    // The cell's write barrier orders this store before the notify's counter increment.
    STATE.publish(to);
    pr_info!("Switched from [{}] to [{}]\n", from.word(), to.word());
    if let Some(notifier) = records.notifier.as_ref() {
        notifier.notify();
    }
    Ok(to)
}

/// From now on, every change notifies the pollers of `state` through `notifier`.
///
/// The sysfs group calls this once its files exist, before any interface that can change the
/// state is registered.
pub(crate) fn watch(notifier: Notifier) {
    TRANSITION.lock().notifier = Some(notifier);
}

/// Takes the orchestrator away before its sysfs file goes: publishes `Undefined`, which `show`
/// answers with `ENODEV`, notifies, and hands the notifier back to the sysfs group.
///
/// kernfs does not wake a sleeping `poll` when a file is removed, so without this a watcher
/// asleep on `state` would sleep forever after an unload. The notify wakes every poller, and
/// the read that follows fails with `ENODEV` (from `show` now, or from kernfs once the file is
/// removed). A poller that polls again before the removal sleeps again; `sysfs.rs` wakes it
/// with a last notify through the returned notifier after the removal. The cell orders the
/// store before the notify exactly as for a transition.
pub(crate) fn retire() -> Option<Notifier> {
    let mut records = TRANSITION.lock();
    STATE.publish(State::Undefined);
    let notifier = records.notifier.take();
    if let Some(notifier) = notifier.as_ref() {
        notifier.notify();
    }
    notifier
}

/// Applies an event the kernel raises itself (the freeze), by the transition table alone.
pub(crate) fn raise(event: Event) -> Result<State, TransitionError> {
    change(|from| next_state(from, event))
}

/// The test hook's damage: writes the outgoing record for the current state with `damage`
/// applied, so the next kernel must refuse it. A later change writes a sound record again.
pub(crate) fn damage_record(damage: Damage) -> Result {
    let mut records = TRANSITION.lock();
    let outgoing = records.outgoing.as_mut().ok_or(EOPNOTSUPP)?;
    outgoing.write(damage.apply(Record::new(STATE.observe(), generation())));
    pr_info!("Test hook: damaged the handover record ({damage:?})\n");
    Ok(())
}
