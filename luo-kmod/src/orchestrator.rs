// SPDX-License-Identifier: GPL-2.0

//! The orchestrator's state and its one setter.
//!
//! Every change of state, whatever triggers it (an ioctl, a kexec reboot, the test hook, or in
//! the observer flavour a step of mainline's sessions), goes through one critical section
//! ([`change`], [`observe`]): under one lock it reads the current state, decides the next one,
//! publishes it with the transition count raised by one, logs it and notifies sysfs, all before
//! the triggering call returns, so a read of `/sys/kernel/liveupdate/state` right after an
//! ioctl returns shows the new word. Readers ([`current`], [`transitions`]) take no lock: the
//! [`StateCell`] orders them against the notify.
//!
//! The notifiers of `transitions` and `state` are kept under the same lock: the sysfs group
//! hands them over once its files exist ([`watch`]) and takes them back when it goes
//! ([`retire`]).

use crate::kernel_sysfs::Notifier;
use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        global_lock,
    },
    time::{Delta, Instant, Monotonic},
};

use crate::kho::{self, Incoming, NoRecord, Outgoing};
use crate::log::{Line, NotALiveUpdate, Switched};
use crate::observed::{observed_change_allowed, Sessions, Step};
use crate::{next_state, Arrival, Event, Flavour, Record, State, StateCell, TransitionError};

/// The current state and the transitions since [`Running::start`] (or [`Running::observe`]),
/// in one word. `Undefined` only until then, before any interface exists.
static STATE: StateCell = StateCell::new(State::Undefined);

/// This kernel's live-update generation: set by [`Running::start`] before any interface exists
/// and never changed while the module is loaded, so readers need no ordering beyond the
/// registration of the interface they read it through.
static GENERATION: Atomic<u64> = Atomic::new(0);

/// Whether this load observes mainline's orchestrator: set with the generation and, like it,
/// fixed while the module is loaded.
static OBSERVER: Atomic<bool> = Atomic::new(false);

/// What every change updates in the same critical section: the handover records, and the
/// pollers of `transitions` and `state`.
struct Records {
    /// The record this kernel leaves for the next one; `None` when KHO is off.
    outgoing: Option<Outgoing>,
    /// The previous kernel's record while this boot is `updated`, to mark it at `finish`.
    incoming: Option<Incoming>,
    /// The notifiers of `transitions` and `state`, while the files exist.
    notifiers: Option<Notifiers>,
    /// In the observer flavour, what mainline's sessions hold: the state is derived from it.
    sessions: Option<Sessions>,
    /// The log lines of changes per interval.
    log_limit: RateLimit,
}

impl Records {
    const EMPTY: Self = Self {
        outgoing: None,
        incoming: None,
        notifiers: None,
        sessions: None,
        log_limit: RateLimit::new(),
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
            // Without the record the module still serves the state, as with `kho=off`; only the
            // next kernel's detection of a live update is lost, and the line says so.
            Outgoing::register(Record::new(arrival.state, arrival.generation))
                .inspect_err(|error| {
                    let line = Line::KhoSubtreeRefused {
                        subtree: crate::record::KHO_SUBTREE,
                        error,
                    };
                    pr_warn!("{}\n", line)
                })
                .ok()
        } else {
            pr_warn!("{}\n", Line::KhoOff);
            None
        };
        // No reader exists yet, so these are initial values rather than changes to notify
        // (nor to count).
        GENERATION.store(arrival.generation, Relaxed);
        OBSERVER.store(false, Relaxed);
        STATE.start(arrival.state);
        *TRANSITION.lock() = Records {
            outgoing,
            incoming,
            ..Records::EMPTY
        };
        // INVARIANT: The lock was initialised above.
        Ok(Self(()))
    }

    /// Sets up the lock for the observer flavour: the state is derived from mainline's
    /// sessions, starting from `sessions` at boot, and the generation is mainline's live-update
    /// number. luo leaves no record of its own: mainline's data says it all.
    ///
    /// Module init calls this exactly once, first, before it registers any interface.
    #[cfg_attr(not(luo_mainline), expect(dead_code))]
    pub(crate) fn observe(generation: u64, sessions: Sessions) -> Self {
        // SAFETY: As in `start`: once per load, before any interface that takes the lock.
        unsafe { TRANSITION.init() };
        GENERATION.store(generation, Relaxed);
        OBSERVER.store(true, Relaxed);
        STATE.start(sessions.state());
        *TRANSITION.lock() = Records {
            sessions: Some(sessions),
            ..Records::EMPTY
        };
        // INVARIANT: The lock was initialised above.
        Self(())
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
            pr_info!("{}\n", Line::NotALiveUpdate(NotALiveUpdate::NoHandoverData));
            return (Arrival::COLD, None);
        }
        Err(NoRecord::Absent) => {
            pr_info!("{}\n", Line::NotALiveUpdate(NotALiveUpdate::NoRecord));
            return (Arrival::COLD, None);
        }
        Err(NoRecord::Failed(err)) => {
            pr_err!(
                "{}\n",
                Line::NotALiveUpdate(NotALiveUpdate::Unreadable(&err))
            );
            return (Arrival::COLD, None);
        }
        Err(NoRecord::Refused(reason)) => {
            pr_err!(
                "{}\n",
                Line::NotALiveUpdate(NotALiveUpdate::Refused(&reason))
            );
            return (Arrival::COLD, None);
        }
    };
    match incoming.read() {
        Err(reason) => {
            pr_err!(
                "{}\n",
                Line::NotALiveUpdate(NotALiveUpdate::Refused(&reason))
            );
            (Arrival::COLD, None)
        }
        Ok(handover) => {
            let arrival = handover.arrival();
            if arrival.state == State::Updated {
                (arrival, Some(incoming))
            } else {
                // `normal` is also what `finish` marks in this boot, for a later load.
                let why = NotALiveUpdate::NotFrozen(handover.state);
                pr_info!("{}\n", Line::NotALiveUpdate(why));
                (arrival, None)
            }
        }
    }
}

/// This kernel's live-update generation (sysfs `generation`).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Relaxed)
}

/// Who runs the live update this module shows (sysfs `flavour`).
pub(crate) fn flavour() -> Flavour {
    if OBSERVER.load(Relaxed) {
        Flavour::Observer
    } else {
        Flavour::Standalone
    }
}

/// The current state, read without the lock (sysfs `show`, `GET_STATE`).
pub(crate) fn current() -> State {
    STATE.observe()
}

/// The transitions since the orchestrator started, and the state they led to, read together
/// without the lock (sysfs `show` of `transitions`).
pub(crate) fn transitions() -> (u64, State) {
    STATE.load()
}

/// What the sysfs files show: the state with its count, read at each `show`, and the facts
/// that are fixed while the module is loaded, copied once.
///
/// The state itself stays in this module's statics rather than in the sysfs group's data: the
/// kexec reboot notifier and mainline's observer hook reach the orchestrator from C callbacks
/// that carry no pointer to it, and there is one orchestrator per kernel.
#[derive(Clone, Copy)]
pub(crate) struct View {
    generation: u64,
    flavour: Flavour,
}

impl View {
    /// The current state, read without the lock.
    pub(crate) fn state(&self) -> State {
        current()
    }

    /// The transitions since the orchestrator started and the state they led to, in one read.
    pub(crate) fn transitions(&self) -> (u64, State) {
        transitions()
    }

    /// This kernel's live-update generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Who runs the live update shown.
    pub(crate) fn flavour(&self) -> Flavour {
        self.flavour
    }
}

/// The view the sysfs group shows, once [`Running::start`] or [`Running::observe`] set the
/// facts it copies.
pub(crate) fn view() -> View {
    View {
        generation: generation(),
        flavour: flavour(),
    }
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
    publish(&records, to);
    // A user can drive transitions in a loop; the log keeps a burst of them per interval.
    if records.log_limit.allow() {
        let switched = Switched {
            flavour: Flavour::Standalone,
            from,
            to,
        };
        pr_info!("{}\n", Line::Switched(switched));
    }
    Ok(to)
}

/// Publishes `to` with the transition count raised by one, then wakes the pollers of
/// `transitions` and of `state`; called with the lock held.
fn publish(records: &Records, to: State) {
    // The cell's write barrier orders this store (the state and the count together) before
    // the notifies' counter increments.
    STATE.publish(to);
    if let Some(notifiers) = records.notifiers.as_ref() {
        notifiers.notify();
    }
}

/// The notifiers of the two attributes that change: `transitions` and `state`.
pub(crate) struct Notifiers {
    /// `/sys/kernel/liveupdate/transitions`.
    pub(crate) transitions: Notifier,
    /// `/sys/kernel/liveupdate/state`.
    pub(crate) state: Notifier,
}

impl Notifiers {
    /// Wakes the pollers of `transitions`, then those of `state`, after the store they
    /// announce.
    ///
    /// Both files show the one word the store wrote, so a poller of either that wakes reads
    /// the new count and state (the cell's barriers). The order is the reader's: a reader
    /// reads `transitions` first, then `state`, and `state`, the file every watcher polls, is
    /// notified last, so a watcher it wakes finds the whole change published and notified.
    pub(crate) fn notify(&self) {
        self.transitions.notify();
        self.state.notify();
    }
}

/// From now on, every change notifies the pollers of `transitions` and `state`.
///
/// The sysfs group calls this once its files exist, before any interface that can change the
/// state is registered.
pub(crate) fn watch(notifiers: Notifiers) {
    TRANSITION.lock().notifiers = Some(notifiers);
}

/// Takes the orchestrator away before its sysfs files go: publishes `Undefined` (keeping the
/// count), which every `show` answers with `ENODEV`, notifies, and hands the notifiers back to
/// the sysfs group.
///
/// kernfs does not wake a sleeping `poll` when a file is removed, so without this a watcher
/// asleep on `state` or `transitions` would sleep forever after an unload. The notify wakes
/// every poller, and the read that follows fails with `ENODEV` (from `show` now, or from
/// kernfs once the file is removed). A poller that polls again before the removal sleeps
/// again; `sysfs.rs` wakes it with a last notify through the returned notifiers after the
/// removal. The cell orders the store before the notify exactly as for a transition.
pub(crate) fn retire() -> Option<Notifiers> {
    let mut records = TRANSITION.lock();
    STATE.retire();
    let notifiers = records.notifiers.take();
    if let Some(notifiers) = notifiers.as_ref() {
        notifiers.notify();
    }
    notifiers
}

/// Applies an event the kernel raises itself (the freeze), by the transition table alone.
pub(crate) fn raise(event: Event) -> Result<State, TransitionError> {
    change(|from| next_state(from, event))
}

/// The test hook's damage: writes the outgoing record for the current state with `damage`
/// applied, so the next kernel must refuse it. A later change writes a sound record again.
#[cfg(luo_selftest)]
pub(crate) fn damage_record(damage: crate::Damage) -> Result {
    let mut records = TRANSITION.lock();
    let outgoing = records.outgoing.as_mut().ok_or(EOPNOTSUPP)?;
    outgoing.write(damage.apply(Record::new(STATE.observe(), generation())));
    pr_info!("{}\n", Line::TestHookDamaged(&damage));
    Ok(())
}

/// The observer flavour's setter: applies a step of mainline's lifecycle and publishes the
/// state it derives, when it changed.
///
/// A derived change outside the observer's table would be a bug in the derivation or in the
/// hook: it is still published (the state must say what the sessions hold) and reported.
/// `liveupdate.c` creates hundreds of sessions, so the log lines are rate-limited.
#[cfg_attr(not(luo_mainline), expect(dead_code))]
pub(crate) fn observe(step: Step) {
    let mut records = TRANSITION.lock();
    let Some(sessions) = records.sessions.as_mut() else {
        return;
    };
    let inconsistent = sessions.apply(step).err();
    let to = sessions.state();
    let from = STATE.observe();
    if let Some(err) = inconsistent {
        if records.log_limit.allow() {
            pr_err!("{}\n", Line::ObserverUncounted(&err.0));
        }
    }
    if to == from {
        return;
    }
    publish(&records, to);
    if !observed_change_allowed(from, to) {
        pr_err!("{}\n", Line::ObserverIllegal { from, to });
    } else if records.log_limit.allow() {
        let switched = Switched {
            flavour: Flavour::Observer,
            from,
            to,
        };
        pr_info!("{}\n", Line::Switched(switched));
    }
}

/// A rate limit for the log line of each change, in the spirit of `printk_ratelimit()`: a burst
/// of [`RateLimit::BURST`] lines per [`RateLimit::INTERVAL_SECS`]; kept under the lock.
struct RateLimit {
    /// When the current interval began; `None` before the first line.
    since: Option<Instant<Monotonic>>,
    /// The lines still allowed in the current interval.
    left: u32,
}

impl RateLimit {
    const BURST: u32 = 10;
    const INTERVAL_SECS: i64 = 5;

    const fn new() -> Self {
        Self {
            since: None,
            left: 0,
        }
    }

    /// Whether one more line may be logged now.
    fn allow(&mut self) -> bool {
        let expired = self
            .since
            .is_none_or(|since| since.elapsed() >= Delta::from_secs(Self::INTERVAL_SECS));
        if expired {
            self.since = Some(Instant::now());
            self.left = Self::BURST;
        }
        let allowed = self.left > 0;
        self.left = self.left.saturating_sub(1);
        allowed
    }
}
