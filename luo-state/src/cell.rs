//! The cell that holds the orchestrator's state and publishes changes to sysfs readers.

use crate::sync::{read_barrier, write_barrier, Word};
use crate::State;

/// The current state, written by one setter at a time and read locklessly by sysfs `show`.
///
/// kernfs announces a change with an unordered counter increment (`atomic_inc` in
/// `sysfs_notify`), and a read samples that counter with an unordered `atomic_read` just before
/// calling `show`. Without barriers this is the litmus test `MP+poonceonces` ("Sometimes"): a
/// reader can record the new counter together with the old word, and then sleep in `poll`
/// until the next transition, which may never come. The v3 patch has exactly this hazard.
///
/// The cell closes it by pairing a barrier on each side:
/// - [`StateCell::publish`] stores the state and then issues `smp_wmb()` (`fence(Release)`),
///   so the store is visible before the notify's counter increment that follows it;
/// - [`StateCell::observe`] issues `smp_rmb()` (`fence(Acquire)`) before loading the state, so
///   the load happens after the counter sample kernfs took before calling `show`.
///
/// A reader that sees the new counter therefore sees the new state
/// (`MP+fencewmbonceonce+fencermbonceonce`: "Never"). `luo-state/tests/loom_kernfs.rs` checks
/// this with loom and checks that the barrier-free version fails.
///
/// The cell does not serialise writers: the caller holds a lock around the read of the current
/// state, the transition and [`StateCell::publish`].
pub struct StateCell {
    // INVARIANT: `raw` always holds the uapi number of a `State`: only `new` and `publish`
    // write it, and both take a `State`.
    raw: Word,
}

impl StateCell {
    /// A cell that holds `initial`.
    #[cfg(not(loom))]
    pub const fn new(initial: State) -> Self {
        StateCell {
            raw: Word::new(initial.as_u32()),
        }
    }

    /// A cell that holds `initial` (loom atomics cannot be built in a const).
    #[cfg(loom)]
    pub fn new(initial: State) -> Self {
        StateCell {
            raw: Word::new(initial.as_u32()),
        }
    }

    /// Stores `next` and orders the store before everything the caller does afterwards: call
    /// this, then notify readers (`sysfs_notify`).
    pub fn publish(&self, next: State) {
        self.raw.store(next.as_u32());
        // Pairs with the read barrier in `observe`: orders the store above before the counter
        // increment of the notify that follows.
        write_barrier();
    }

    /// Loads the state, ordered after everything the caller did before: kernfs sampled its
    /// event counter just before calling `show`, which calls this.
    pub fn observe(&self) -> State {
        // Pairs with the write barrier in `publish`: a reader that sampled a counter value
        // incremented after a publish sees that publish's state.
        read_barrier();
        // The invariant makes the fallback unreachable; it keeps `observe` free of panics.
        State::from_u32(self.raw.load()).unwrap_or(State::Undefined)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_new_cell_holds_its_initial_state() {
        assert_eq!(StateCell::new(State::Updated).observe(), State::Updated);
    }

    #[test]
    fn observe_returns_the_last_published_state() {
        let cell = StateCell::new(State::Normal);
        cell.publish(State::Prepared);
        cell.publish(State::Frozen);
        assert_eq!(cell.observe(), State::Frozen);
    }
}
