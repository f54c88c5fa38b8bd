//! The cell that holds the orchestrator's state and its transition counter, and publishes
//! changes to sysfs readers.

use crate::sync::{read_barrier, write_barrier, Word};
use crate::State;

/// How many low bits of the cell's word hold the state's uapi number; the rest hold the count.
const STATE_BITS: u32 = 8;
/// The state's bits of the word.
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

// Every state's number fits in the state's bits of the word.
const _: () = {
    let mut i = 0;
    while i < State::ALL.len() {
        assert!((State::ALL[i].as_u32() as u64) <= STATE_MASK);
        i += 1;
    }
};

/// The current state and the number of transitions since the cell was set up, in one word:
/// written by one setter at a time, read locklessly by sysfs `show`.
///
/// # Ordering against the notify
///
/// kernfs announces a change with an unordered counter increment (`atomic_inc` in
/// `sysfs_notify`), and a read samples that counter with an unordered `atomic_read` just before
/// calling `show`. Without barriers this is the litmus test `MP+poonceonces` ("Sometimes"): a
/// reader can record the new counter together with the old word, and then sleep in `poll`
/// until the next transition, which may never come. The v3 patch has exactly this hazard.
///
/// The cell closes it by pairing a barrier on each side:
/// - [`StateCell::publish`] stores the word and then issues `smp_wmb()` (`fence(Release)`),
///   so the store is visible before the notify's counter increment that follows it;
/// - [`StateCell::load`] issues `smp_rmb()` (`fence(Acquire)`) before loading the word, so the
///   load happens after the counter sample kernfs took before calling `show`.
///
/// A reader that sees the new counter therefore sees the new state
/// (`MP+fencewmbonceonce+fencermbonceonce`: "Never"). `luo-state/tests/loom_kernfs.rs` checks
/// this with loom and checks that the barrier-free version fails.
///
/// # The transition counter
///
/// The state and the count of transitions that led to it are one 64-bit word (the state's
/// number in the low 8 bits, the count above), stored with one single-copy-atomic store. So
/// the `transitions` and `state` attributes, whose `show` each load the word, never disagree
/// about one moment: every value of the word is one state with its exact count.
///
/// A reader that reads the two attributes reads the word twice, and a transition may come in
/// between. Its protocol (what `luo_user::Snapshot` does):
/// 1. read `transitions` (count `c1`), then `state` (`s`), then `transitions` again (`c2`);
/// 2. if `c1 == c2`, then `s` was stored with the count `c1`: the three loads read one
///    location in program order, so by read-read coherence the middle one read a value
///    between the other two, and no store a reader can see lowers the count
///    ([`StateCell::publish`] raises it by one, [`StateCell::retire`] keeps it, and
///    [`StateCell::start`], which resets it to 0, runs before any reader exists). So `s` is the
///    state the `c1`-th transition made, or `Undefined` when the cell was retired after it
///    (the interface is going away). Once the count saturates at
///    [`StateCell::MAX_TRANSITIONS`], it no longer tells transitions apart;
/// 3. otherwise a transition came in between: read again.
///
/// Reading the counter before the state is what matters: a reader that stops after step 1's
/// first two reads holds a count with the state of that count or a later one, never an older
/// state. The other order (state, then counter) can pair a count with an older state.
/// `luo-state/tests/loom_counter.rs` checks both, and that storing the count and the state as
/// two words loses the exact pairing.
///
/// The cell does not serialise writers: the caller holds a lock around the read of the current
/// state, the transition and [`StateCell::publish`].
pub struct StateCell {
    // INVARIANT: the low `STATE_BITS` bits of `raw` always hold the uapi number of a `State`,
    // and the bits above the count: only `new`, `start`, `publish` and `retire` write it, and
    // each packs a `State` with `pack`.
    raw: Word,
}

/// The word that holds `state` after `transitions` transitions (saturating at
/// [`StateCell::MAX_TRANSITIONS`]).
const fn pack(transitions: u64, state: State) -> u64 {
    let transitions = if transitions > StateCell::MAX_TRANSITIONS {
        StateCell::MAX_TRANSITIONS
    } else {
        transitions
    };
    (transitions << STATE_BITS) | state.as_u32() as u64
}

/// The count and the state a word holds.
fn unpack(raw: u64) -> (u64, State) {
    // The mask keeps 8 bits, so the cast is lossless. The invariant makes the fallback
    // unreachable; it keeps this free of panics.
    let state = State::from_u32((raw & STATE_MASK) as u32).unwrap_or(State::Undefined);
    (raw >> STATE_BITS, state)
}

impl StateCell {
    /// The largest count the cell holds (2^56 - 1); it stays there, never wrapping to a count a
    /// reader would take for fewer transitions.
    pub const MAX_TRANSITIONS: u64 = u64::MAX >> STATE_BITS;

    /// A cell that holds `initial` and no transition.
    #[cfg(not(loom))]
    pub const fn new(initial: State) -> Self {
        StateCell {
            raw: Word::new(pack(0, initial)),
        }
    }

    /// A cell that holds `initial` and no transition (loom atomics cannot be built in a const).
    #[cfg(loom)]
    pub fn new(initial: State) -> Self {
        StateCell {
            raw: Word::new(pack(0, initial)),
        }
    }

    /// Sets the state a boot starts in, with a count of 0: not a transition. Call it before
    /// any reader can exist.
    pub fn start(&self, initial: State) {
        self.raw.store(pack(0, initial));
        write_barrier();
    }

    /// A transition to `next`: stores `next` with the count raised by one, in one store, and
    /// orders that store before everything the caller does afterwards: call this, then notify
    /// readers (`sysfs_notify` of `transitions`, then of `state`). Returns the new count.
    pub fn publish(&self, next: State) -> u64 {
        let transitions = self.transitions().saturating_add(1);
        self.raw.store(pack(transitions, next));
        // Pairs with the read barrier in `load`: orders the store above before the counter
        // increment of the notify that follows.
        write_barrier();
        transitions.min(Self::MAX_TRANSITIONS)
    }

    /// Stores `Undefined` (the interface is going away), keeping the count: not a transition.
    /// Ordered like [`StateCell::publish`].
    pub fn retire(&self) {
        self.raw.store(pack(self.transitions(), State::Undefined));
        write_barrier();
    }

    /// Loads the count and the state of one moment, ordered after everything the caller did
    /// before: kernfs sampled its event counter just before calling `show`, which calls this.
    pub fn load(&self) -> (u64, State) {
        // Pairs with the write barrier in `publish`: a reader that sampled a counter value
        // incremented after a publish sees that publish's word, or a later one.
        read_barrier();
        unpack(self.raw.load())
    }

    /// The state, as [`StateCell::load`] reads it.
    pub fn observe(&self) -> State {
        self.load().1
    }

    /// The number of transitions, as [`StateCell::load`] reads it.
    pub fn transitions(&self) -> u64 {
        self.load().0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_new_cell_holds_its_initial_state_and_no_transition() {
        let cell = StateCell::new(State::Updated);
        assert_eq!(cell.load(), (0, State::Updated));
    }

    #[test]
    fn observe_returns_the_last_published_state() {
        let cell = StateCell::new(State::Normal);
        cell.publish(State::Prepared);
        cell.publish(State::Frozen);
        assert_eq!(cell.observe(), State::Frozen);
    }

    #[test]
    fn each_publish_counts_one_transition() {
        let cell = StateCell::new(State::Undefined);
        cell.start(State::Normal);
        assert_eq!(cell.load(), (0, State::Normal));
        assert_eq!(cell.publish(State::Prepared), 1);
        assert_eq!(cell.publish(State::Normal), 2);
        assert_eq!(cell.load(), (2, State::Normal));
    }

    #[test]
    fn start_resets_the_count_and_retire_keeps_it() {
        let cell = StateCell::new(State::Normal);
        cell.publish(State::Prepared);
        cell.retire();
        assert_eq!(cell.load(), (1, State::Undefined));
        cell.start(State::Updated);
        assert_eq!(cell.load(), (0, State::Updated));
    }

    #[test]
    fn every_state_and_count_round_trips_through_the_word() {
        for state in State::ALL {
            for count in [0, 1, 255, 256, 1 << 40, StateCell::MAX_TRANSITIONS] {
                assert_eq!(unpack(pack(count, state)), (count, state));
            }
        }
    }

    #[test]
    fn the_count_saturates_instead_of_wrapping() {
        assert_eq!(
            unpack(pack(u64::MAX, State::Frozen)),
            (StateCell::MAX_TRANSITIONS, State::Frozen)
        );
        let cell = StateCell::new(State::Normal);
        cell.raw
            .store(pack(StateCell::MAX_TRANSITIONS, State::Normal));
        assert_eq!(cell.publish(State::Prepared), StateCell::MAX_TRANSITIONS);
        assert_eq!(cell.load(), (StateCell::MAX_TRANSITIONS, State::Prepared));
    }
}
