//! Test 4: a watcher blocked on `POLLPRI` wakes for each transition and reads the new word; an
//! idle watcher does not wake; under stress every watcher ends on the final state, and
//! watchers of the transition counter read exact snapshots (`luo_user::Snapshot`): each count
//! paired with the state that count reached, what they saw plus what they missed adding up to
//! every transition.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use luo_state::{Event, State};
use luo_sysfs_abi::path::TRANSITIONS_PATH;
use luo_user::Snapshot;

use crate::{Outcome, dev, ensure, module, sysfs};

/// Long enough that a wake which should come always does, even on a loaded TCG guest.
const WAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle watcher is watched for a spurious wake.
const IDLE_WAIT: Duration = Duration::from_secs(2);
const STRESS_WATCHERS: usize = 4;
const COUNTER_WATCHERS: usize = 2;
const STRESS_TRANSITIONS: usize = 2000;

/// Runs the poll checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    wakes_for_each_transition()?;
    idle_watcher_sleeps()?;
    stress()
}

fn wakes_for_each_transition() -> Outcome {
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    let steps = [
        (Event::Prepare, State::Prepared),
        (Event::Freeze, State::Frozen),
        (Event::Cancel, State::Normal),
        (Event::Prepare, State::Prepared),
        (Event::Cancel, State::Normal),
    ];
    let (armed_tx, armed_rx) = mpsc::channel();
    let expected: Vec<State> = steps.iter().map(|(_, s)| *s).collect();
    let watcher = thread::spawn(move || -> Outcome {
        let file = sysfs::open().map_err(|err| format!("opening state: {err}"))?;
        sysfs::read(&file)?;
        for want in expected {
            armed_tx
                .send(())
                .map_err(|_| "main thread gone".to_owned())?;
            let revents =
                sysfs::poll_pri(&file, WAKE_TIMEOUT).map_err(|err| format!("poll: {err}"))?;
            ensure!(
                revents.is_some(),
                "no wake within {WAKE_TIMEOUT:?} for the change to '{want}'"
            );
            let got = sysfs::read(&file)?;
            ensure!(got == want, "woke and read '{got}', expected '{want}'");
        }
        Ok(())
    });
    for (event, _) in steps {
        armed_rx
            .recv()
            .map_err(|_| "the watcher stopped early".to_owned())?;
        dev::trigger(&control, event)?;
    }
    watcher
        .join()
        .map_err(|_| "the watcher panicked".to_owned())?
}

fn idle_watcher_sleeps() -> Outcome {
    let file = sysfs::open().map_err(|err| format!("opening state: {err}"))?;
    let fresh = sysfs::poll_pri(&file, Duration::ZERO).map_err(|err| format!("poll: {err}"))?;
    ensure!(
        fresh.is_some(),
        "a fresh fd must report a change until its first read"
    );
    sysfs::read(&file)?;
    let idle = sysfs::poll_pri(&file, IDLE_WAIT).map_err(|err| format!("poll: {err}"))?;
    ensure!(
        idle.is_none(),
        "an idle watcher woke ({idle:?}) with no transition"
    );
    Ok(())
}

fn stress() -> Outcome {
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    // The stress starts in `normal`: transition k after `start` leads to `prepared` when k is
    // odd, so a snapshot's count names its state.
    let start = Snapshot::read_default().map_err(|err| err.to_string())?;
    ensure!(
        start.state == State::Normal,
        "the stress starts in '{}'",
        start.state
    );
    let counters: Vec<_> = (0..COUNTER_WATCHERS)
        .map(|_| {
            let done = Arc::clone(&done);
            let ready = ready_tx.clone();
            thread::spawn(move || count_watcher(start, &done, &ready))
        })
        .collect();
    let watchers: Vec<_> = (0..STRESS_WATCHERS)
        .map(|_| {
            let done = Arc::clone(&done);
            let ready = ready_tx.clone();
            thread::spawn(move || -> Result<(State, usize), String> {
                let file = sysfs::open().map_err(|err| format!("opening state: {err}"))?;
                let mut last = sysfs::read(&file)?;
                let mut wakes = 0;
                ready.send(()).map_err(|_| "main thread gone".to_owned())?;
                loop {
                    // Read `done` before polling: a watcher stops only after a poll that began
                    // once every transition had been made, and found nothing new.
                    let finished = done.load(Ordering::Acquire);
                    match sysfs::poll_pri(&file, Duration::from_millis(200))
                        .map_err(|e| format!("poll: {e}"))?
                    {
                        Some(_) => {
                            wakes += 1;
                            last = sysfs::read(&file)?;
                        }
                        None if finished => return Ok((last, wakes)),
                        None => {}
                    }
                }
            })
        })
        .collect();
    for _ in 0..STRESS_WATCHERS + COUNTER_WATCHERS {
        ready_rx
            .recv()
            .map_err(|_| "a watcher stopped early".to_owned())?;
    }
    for i in 0..STRESS_TRANSITIONS {
        let event = if i % 2 == 0 {
            Event::Prepare
        } else {
            Event::Cancel
        };
        dev::set_event(&control, event)
            .map_err(|e| format!("transition {i} ({event}): errno {e}"))?;
    }
    let final_state = dev::get_state(&control)?;
    done.store(true, Ordering::Release);
    for (i, watcher) in watchers.into_iter().enumerate() {
        let (last, wakes) = watcher
            .join()
            .map_err(|_| format!("watcher {i} panicked"))??;
        ensure!(
            last == final_state,
            "watcher {i} ended on '{last}', the final state is '{final_state}'"
        );
        println!(
            "note: stress watcher {i}: {wakes} wakes for {STRESS_TRANSITIONS} transitions (they coalesce)"
        );
    }
    let end = start.transitions + STRESS_TRANSITIONS as u64;
    for (i, counter) in counters.into_iter().enumerate() {
        let (last, seen, missed) = counter
            .join()
            .map_err(|_| format!("counter watcher {i} panicked"))??;
        ensure!(
            last == Snapshot {
                transitions: end,
                state: final_state
            },
            "counter watcher {i} ended on {last:?}, expected {end} transitions and '{final_state}'"
        );
        ensure!(
            seen + missed == STRESS_TRANSITIONS as u64,
            "counter watcher {i} saw {seen} and missed {missed} changes of {STRESS_TRANSITIONS}"
        );
        println!(
            "note: counter watcher {i}: {seen} changes seen, {missed} missed and counted, of {STRESS_TRANSITIONS}"
        );
    }
    Ok(())
}

/// A watcher of the transition counter: polls `transitions`, and at each wake reads it once to
/// re-arm the poll, then a [`Snapshot`]. Every snapshot must be exact (its state is the one its
/// count reached); returns the last one, the changes seen and the changes missed.
fn count_watcher(
    start: Snapshot,
    done: &AtomicBool,
    ready: &mpsc::Sender<()>,
) -> Result<(Snapshot, u64, u64), String> {
    let file = File::open(TRANSITIONS_PATH).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))?;
    sysfs::read_raw(&file).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))?;
    let mut last = Snapshot::read_default().map_err(|err| err.to_string())?;
    let (mut seen, mut missed) = (0, last.transitions - start.transitions);
    ready.send(()).map_err(|_| "main thread gone".to_owned())?;
    loop {
        let finished = done.load(Ordering::Acquire);
        match sysfs::poll_pri(&file, Duration::from_millis(200))
            .map_err(|e| format!("poll: {e}"))?
        {
            Some(_) => {
                sysfs::read_raw(&file).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))?;
                let now = Snapshot::read_default().map_err(|err| err.to_string())?;
                let odd = (now.transitions - start.transitions) % 2 == 1;
                let reached = if odd { State::Prepared } else { State::Normal };
                ensure!(
                    now.state == reached,
                    "snapshot {now:?} is not exact: count {} reached '{reached}'",
                    now.transitions
                );
                missed += now
                    .missed_since(&last)
                    .ok_or_else(|| format!("the count went back from {last:?} to {now:?}"))?;
                seen += u64::from(now.state != last.state);
                last = now;
            }
            None if finished => return Ok((last, seen, missed)),
            None => {}
        }
    }
}
