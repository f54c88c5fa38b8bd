//! Loom models of the sysfs poll protocol around [`StateCell`].
//!
//! kernfs (fs/kernfs/file.c): `sysfs_notify` increments a per-file event counter
//! with a relaxed RMW and wakes pollers; a read samples the counter with a relaxed load, then
//! calls `show`. `poll` sleeps while the counter equals the value sampled at the last read. So
//! a reader whose last read sampled the final counter value sleeps for good, and must have
//! seen the final state with it, or it is left stale.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p luo-state --test loom_kernfs`.

#![cfg(loom)]

use loom::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use luo_state::{State, StateCell};

/// The states the writer publishes, in order; the k-th notify follows `SEQUENCE[k]`.
const SEQUENCE: [State; 3] = [State::Normal, State::Prepared, State::Frozen];
const TRANSITIONS: usize = SEQUENCE.len() - 1;
const READERS: usize = 2;
const READS_PER_READER: usize = 2;

/// The store/notify orderings under test: the writer side runs before the notify, the reader
/// side is what `show` runs after kernfs sampled the counter.
trait Cell: Send + Sync + 'static {
    fn new(initial: State) -> Self;
    fn publish(&self, next: State);
    fn observe(&self) -> State;
}

impl Cell for StateCell {
    fn new(initial: State) -> Self {
        StateCell::new(initial)
    }
    fn publish(&self, next: State) {
        StateCell::publish(self, next);
    }
    fn observe(&self) -> State {
        StateCell::observe(self)
    }
}

/// The v3 patch: `WRITE_ONCE` then `sysfs_notify`; `show` does a plain `READ_ONCE`.
struct PatchCell(AtomicU32);

impl Cell for PatchCell {
    fn new(initial: State) -> Self {
        PatchCell(AtomicU32::new(initial.as_u32()))
    }
    fn publish(&self, next: State) {
        self.0.store(next.as_u32(), Ordering::Relaxed);
    }
    fn observe(&self) -> State {
        State::from_u32(self.0.load(Ordering::Relaxed)).unwrap_or(State::Undefined)
    }
}

/// Half a fix: the writer's barrier without the reader's.
struct WriterBarrierOnly(AtomicU32);

impl Cell for WriterBarrierOnly {
    fn new(initial: State) -> Self {
        WriterBarrierOnly(AtomicU32::new(initial.as_u32()))
    }
    fn publish(&self, next: State) {
        self.0.store(next.as_u32(), Ordering::Relaxed);
        fence(Ordering::Release);
    }
    fn observe(&self) -> State {
        State::from_u32(self.0.load(Ordering::Relaxed)).unwrap_or(State::Undefined)
    }
}

/// One sysfs file as kernfs keeps it: the event counter next to the attribute's state.
struct SysfsFile<C> {
    event: AtomicUsize,
    cell: C,
}

impl<C: Cell> SysfsFile<C> {
    /// The orchestrator's setter: publish, then `sysfs_notify`.
    fn transition(&self, next: State) {
        self.cell.publish(next);
        self.event.fetch_add(1, Ordering::Relaxed);
    }

    /// `kernfs_fop_read_iter`: sample the counter, then call `show`.
    fn read(&self) -> (usize, State) {
        let event = self.event.load(Ordering::Relaxed);
        (event, self.cell.observe())
    }
}

fn position(state: State) -> usize {
    SEQUENCE
        .iter()
        .position(|s| *s == state)
        .unwrap_or(usize::MAX)
}

/// Two transitions against two readers that read twice each; panics with "stale" when a
/// reader records a counter value together with a state older than the one published before
/// that notify.
fn check_protocol<C: Cell>() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let file = Arc::new(SysfsFile {
            event: AtomicUsize::new(0),
            cell: C::new(SEQUENCE[0]),
        });

        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let file = Arc::clone(&file);
                thread::spawn(move || {
                    let mut records = [(0, State::Undefined); READS_PER_READER];
                    for record in &mut records {
                        *record = file.read();
                    }
                    records
                })
            })
            .collect();

        for next in &SEQUENCE[1..] {
            file.transition(*next);
        }

        for reader in readers {
            let records = reader.join().expect("reader thread");
            for (event, state) in records {
                assert!(
                    position(state) >= event,
                    "stale read: counter {event} seen with state {state}"
                );
            }
            let (last_event, last_state) = records[READS_PER_READER - 1];
            if last_event == TRANSITIONS {
                // The counter will not change again, so poll never wakes this reader.
                assert_eq!(
                    last_state, SEQUENCE[TRANSITIONS],
                    "stale reader asleep: final counter with state {last_state}"
                );
            }
        }
    });
}

#[test]
fn state_cell_leaves_no_reader_stale() {
    check_protocol::<StateCell>();
}

#[test]
#[should_panic(expected = "stale")]
fn patch_orderings_leave_a_reader_stale() {
    check_protocol::<PatchCell>();
}

#[test]
#[should_panic(expected = "stale")]
fn a_writer_barrier_alone_leaves_a_reader_stale() {
    check_protocol::<WriterBarrierOnly>();
}
