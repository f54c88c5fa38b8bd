//! Loom models of the transition counter beside the state: the `transitions` and `state`
//! attributes, each a kernfs file with its own event counter, both shown from [`StateCell`].
//!
//! The writer makes each transition as the module does: publish, then notify `transitions`,
//! then `state`. A reader follows luo-user's `Snapshot` protocol: read `transitions`, then
//! `state`, then `transitions` again. What must hold for every reader:
//! - **never older**: the state read after a count is the state of that count or a later one;
//! - **exact**: when both counts agree, the state is exactly the state of that count;
//! - **not asleep stale**: a reader whose read of a file sampled that file's final event
//!   counter (so `poll` on it never wakes again) holds the final value of that file.
//!
//! And that the model catches the broken orders: reading the state before the counter,
//! storing the count and the state as two words (count first, or even state first, which
//! keeps "never older" but loses "exact"), and notifying before the store.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p luo-state --test loom_counter`.

#![cfg(loom)]

use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use luo_state::{State, StateCell};

/// The states the writer publishes, in order: transition k leads to `SEQUENCE[k]`. Each state
/// appears once, so a state names the count that made it.
const SEQUENCE: [State; 3] = [State::Normal, State::Prepared, State::Frozen];
const TRANSITIONS: u64 = SEQUENCE.len() as u64 - 1;
/// Readers do not interact, so one shows every pairing; a second only multiplies the
/// interleavings.
const READERS: usize = 1;

/// Where the state and the count live, and how each side orders them.
trait Counted: Send + Sync + 'static {
    fn new(initial: State) -> Self;
    /// One transition, before the notifies.
    fn publish(&self, next: State);
    /// What `show` of `transitions` reads.
    fn show_transitions(&self) -> u64;
    /// What `show` of `state` reads.
    fn show_state(&self) -> State;
}

/// luo: one word, one store, one barrier on each side.
impl Counted for StateCell {
    fn new(initial: State) -> Self {
        StateCell::new(initial)
    }
    fn publish(&self, next: State) {
        StateCell::publish(self, next);
    }
    fn show_transitions(&self) -> u64 {
        self.transitions()
    }
    fn show_state(&self) -> State {
        self.observe()
    }
}

/// Two words with the barriers of `StateCell`; `COUNT_FIRST` stores the count before the state.
struct TwoWords<const COUNT_FIRST: bool> {
    state: AtomicU32,
    count: AtomicU64,
}

impl<const COUNT_FIRST: bool> TwoWords<COUNT_FIRST> {
    fn store_state(&self, next: State) {
        self.state.store(next.as_u32(), Ordering::Relaxed);
        fence(Ordering::Release);
    }
    fn store_count(&self) {
        let count = self.count.load(Ordering::Relaxed) + 1;
        self.count.store(count, Ordering::Relaxed);
        fence(Ordering::Release);
    }
}

impl<const COUNT_FIRST: bool> Counted for TwoWords<COUNT_FIRST> {
    fn new(initial: State) -> Self {
        TwoWords {
            state: AtomicU32::new(initial.as_u32()),
            count: AtomicU64::new(0),
        }
    }
    fn publish(&self, next: State) {
        if COUNT_FIRST {
            self.store_count();
            self.store_state(next);
        } else {
            self.store_state(next);
            self.store_count();
        }
    }
    fn show_transitions(&self) -> u64 {
        fence(Ordering::Acquire);
        self.count.load(Ordering::Relaxed)
    }
    fn show_state(&self) -> State {
        fence(Ordering::Acquire);
        State::from_u32(self.state.load(Ordering::Relaxed)).unwrap_or(State::Undefined)
    }
}

/// The two attributes as kernfs keeps them: an event counter per file, beside the cell.
struct Group<C> {
    transitions_event: AtomicUsize,
    state_event: AtomicUsize,
    cell: C,
}

impl<C: Counted> Group<C> {
    /// The orchestrator's setter: publish, then `sysfs_notify` of `transitions`, then `state`;
    /// or, broken, the notifies before the publish.
    fn transition(&self, next: State, writer: Writer) {
        if writer == Writer::NotifyFirst {
            self.notify();
        }
        self.cell.publish(next);
        if writer == Writer::PublishFirst {
            self.notify();
        }
    }

    fn notify(&self) {
        self.transitions_event.fetch_add(1, Ordering::Relaxed);
        self.state_event.fetch_add(1, Ordering::Relaxed);
    }

    /// `kernfs_fop_read_iter` on `transitions`: sample its event counter, then `show`.
    fn read_transitions(&self) -> (usize, u64) {
        let event = self.transitions_event.load(Ordering::Relaxed);
        (event, self.cell.show_transitions())
    }

    /// `kernfs_fop_read_iter` on `state`.
    fn read_state(&self) -> (usize, State) {
        let event = self.state_event.load(Ordering::Relaxed);
        (event, self.cell.show_state())
    }
}

/// The count whose transition made `state`.
fn count_of(state: State) -> u64 {
    SEQUENCE
        .iter()
        .position(|s| *s == state)
        .map_or(u64::MAX, |p| p as u64)
}

/// The order the writer publishes and notifies in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// The module's: publish, then notify.
    PublishFirst,
    /// The wrong one: notify, then publish.
    NotifyFirst,
}

/// The order a reader reads the two files in.
#[derive(Clone, Copy)]
enum Order {
    /// The protocol: `transitions`, `state`, `transitions`.
    CounterFirst,
    /// The wrong one: `state`, then `transitions` (and the state is paired with that count).
    StateFirst,
}

/// What one reader recorded.
struct Reading {
    /// The count paired with the state.
    count: u64,
    state: State,
    /// The count read after the state, in the protocol's order; `None` in the other.
    recount: Option<u64>,
    /// The last event-counter sample and value of each file.
    last_transitions: (usize, u64),
    last_state: (usize, State),
}

fn read<C: Counted>(group: &Group<C>, order: Order) -> Reading {
    match order {
        Order::CounterFirst => {
            let first = group.read_transitions();
            let state = group.read_state();
            let again = group.read_transitions();
            Reading {
                count: first.1,
                state: state.1,
                recount: Some(again.1),
                last_transitions: again,
                last_state: state,
            }
        }
        Order::StateFirst => {
            let state = group.read_state();
            let count = group.read_transitions();
            Reading {
                count: count.1,
                state: state.1,
                recount: None,
                last_transitions: count,
                last_state: state,
            }
        }
    }
}

/// Two transitions against the readers; panics with "older", "inexact" or "stale" when a
/// reader's pair breaks the protocol's promises.
fn check_protocol<C: Counted>(writer: Writer, order: Order) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let group = Arc::new(Group {
            transitions_event: AtomicUsize::new(0),
            state_event: AtomicUsize::new(0),
            cell: C::new(SEQUENCE[0]),
        });

        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let group = Arc::clone(&group);
                thread::spawn(move || read(&group, order))
            })
            .collect();

        for next in &SEQUENCE[1..] {
            group.transition(*next, writer);
        }

        for reader in readers {
            let reading = reader.join().expect("reader thread");
            let made = count_of(reading.state);
            assert!(
                made >= reading.count,
                "older state: count {} paired with {} (the state of count {made})",
                reading.count,
                reading.state
            );
            if reading.recount == Some(reading.count) {
                assert_eq!(
                    made, reading.count,
                    "inexact pair: count {} read on both sides of {}",
                    reading.count, reading.state
                );
            }
            let (event, count) = reading.last_transitions;
            if event == TRANSITIONS as usize {
                assert_eq!(
                    count, TRANSITIONS,
                    "stale reader asleep on transitions: final event with count {count}"
                );
            }
            let (event, state) = reading.last_state;
            if event == TRANSITIONS as usize {
                assert_eq!(
                    state,
                    SEQUENCE[SEQUENCE.len() - 1],
                    "stale reader asleep on state: final event with {state}"
                );
            }
        }
    });
}

#[test]
fn one_word_read_counter_first_is_never_older_and_exact_when_counts_agree() {
    check_protocol::<StateCell>(Writer::PublishFirst, Order::CounterFirst);
}

#[test]
#[should_panic(expected = "older")]
fn reading_the_state_first_pairs_a_count_with_an_older_state() {
    check_protocol::<StateCell>(Writer::PublishFirst, Order::StateFirst);
}

#[test]
#[should_panic(expected = "older")]
fn two_words_with_the_count_stored_first_pair_a_count_with_an_older_state() {
    check_protocol::<TwoWords<true>>(Writer::PublishFirst, Order::CounterFirst);
}

#[test]
#[should_panic(expected = "inexact")]
fn two_words_with_the_state_stored_first_lose_the_exact_pair() {
    check_protocol::<TwoWords<false>>(Writer::PublishFirst, Order::CounterFirst);
}

#[test]
#[should_panic(expected = "stale")]
fn notifying_before_the_publish_leaves_a_reader_asleep_stale() {
    check_protocol::<StateCell>(Writer::NotifyFirst, Order::CounterFirst);
}
