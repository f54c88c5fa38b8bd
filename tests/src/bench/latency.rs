//! Latency from a transition's ioctl to a watcher's report.
//!
//! The driver takes a `CLOCK_MONOTONIC` time right before each `SET_EVENT` ioctl (prepare and
//! cancel in turn); the watcher takes one once it has read and parsed the new word, and sends
//! it back. The driver waits for that report, then a random gap, before the next transition,
//! so that no two transitions coalesce and every watcher is asleep when the next one comes.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use luo_state::{Event, State};
use luo_sysfs_abi::path::STATE_PATH;
use luo_user::Watcher;

use super::{Rng, monotonic_ns};
use crate::{dev, sysfs};

/// Measured transitions for each fast variant (library, C floor), per round.
pub const TRANSITIONS_PER_ROUND: usize = 100;
/// The fast variants run in turn, this many rounds each, so that a slow phase of the host
/// (TCG) does not land on one variant only.
pub const ROUNDS: usize = 3;
/// Measured transitions for re-reading every 100 ms (each costs about 100 ms).
pub const REREAD_TRANSITIONS: usize = 200;
/// Transitions before the measured ones, not counted (caches, first wakes).
pub const WARMUP: usize = 10;
/// The period of the re-reading variant.
pub const REREAD_PERIOD: Duration = Duration::from_millis(100);
/// The gap between a report and the next transition, in microseconds, for the fast variants:
/// long enough that the watcher is back asleep in `poll`.
const FAST_GAP_US: (u64, u64) = (1_000, 5_000);
/// The same for the re-reading variant: uniform over one period, so the transition falls at a
/// random phase of the reader's sleep.
const REREAD_GAP_US: (u64, u64) = (0, 100_000);
/// A report later than this is a failure, not a slow sample.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// One report: the monotonic time at which the watcher had the new state, and that state.
type Report = (u64, State);

/// The control device, issuing prepare and cancel in turn.
pub struct Driver {
    dev: File,
    state: State,
    rng: Rng,
}

impl Driver {
    /// Opens `/dev/liveupdate`; the state must be `normal`.
    pub fn open() -> Result<Driver, String> {
        let dev = dev::open().map_err(|err| format!("opening /dev/liveupdate: {err}"))?;
        let state = dev::get_state(&dev)?;
        if state != State::Normal {
            return Err(format!(
                "the benchmark starts from normal, the state is {state}"
            ));
        }
        Ok(Driver {
            dev,
            state,
            rng: Rng::from_clock(),
        })
    }

    /// The next transition: its monotonic time right before the ioctl, and the state it leads to.
    fn toggle(&mut self) -> Result<(u64, State), String> {
        let (event, next) = match self.state {
            State::Normal => (Event::Prepare, State::Prepared),
            _ => (Event::Cancel, State::Normal),
        };
        let t0 = monotonic_ns();
        dev::set_event(&self.dev, event)
            .map_err(|errno| format!("SET_EVENT {event:?} from {}: errno {errno}", self.state))?;
        self.state = next;
        Ok((t0, next))
    }

    /// Back to `normal` if a measurement stopped half-way.
    fn settle(&mut self) -> Result<(), String> {
        if self.state != State::Normal {
            self.toggle()?;
        }
        Ok(())
    }

    /// Runs [`WARMUP`] + `n` transitions, each after a random gap in `gap_us` and paced by the
    /// watcher's report on `rx`; returns the `n` measured latencies in nanoseconds.
    fn measure(
        &mut self,
        rx: &mpsc::Receiver<Report>,
        n: usize,
        gap_us: (u64, u64),
    ) -> Result<Vec<u64>, String> {
        let mut samples = Vec::with_capacity(n);
        for i in 0..WARMUP + n {
            thread::sleep(Duration::from_micros(self.rng.range(gap_us.0, gap_us.1)));
            let (t0, want) = self.toggle()?;
            let (t1, got) = rx.recv_timeout(REPORT_TIMEOUT).map_err(|err| {
                format!("transition {i} (to {want}): no report within {REPORT_TIMEOUT:?} ({err})")
            })?;
            if got != want {
                return Err(format!(
                    "transition {i}: the watcher reported {got}, expected {want}"
                ));
            }
            if i >= WARMUP {
                samples.push(t1.saturating_sub(t0));
            }
        }
        if let Ok((_, extra)) = rx.try_recv() {
            return Err(format!("a report with no transition behind it ({extra})"));
        }
        Ok(samples)
    }
}

/// (a) The library: `luo_user::Watcher::next_change` in a thread.
pub fn library(driver: &mut Driver, n: usize) -> Result<Vec<u64>, String> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = thread::spawn(move || -> Result<(), String> {
        let mut watcher = Watcher::open_default().map_err(|err| err.to_string())?;
        let _ = ready_tx.send(watcher.current());
        loop {
            let Some(change) = watcher.next_change(None).map_err(|e| e.to_string())? else {
                continue;
            };
            let at = monotonic_ns();
            if stopping.load(Ordering::Relaxed) || tx.send((at, change.state)).is_err() {
                return Ok(());
            }
        }
    });
    let result = match ready_rx.recv_timeout(REPORT_TIMEOUT) {
        Ok(_) => driver.measure(&rx, n, FAST_GAP_US),
        Err(_) => Err("the library watcher did not start".to_owned()),
    };
    // One more transition wakes the watcher, which sees the flag and ends.
    stop.store(true, Ordering::Relaxed);
    driver.toggle()?;
    let ended = thread
        .join()
        .unwrap_or_else(|_| Err("the library watcher panicked".to_owned()));
    driver.settle()?;
    let samples = result?;
    ended.map_err(|err| format!("the library watcher: {err}"))?;
    Ok(samples)
}

/// (b) The floor: the C program `poll_floor` (poll + pread), as a child process whose lines
/// come through a pipe. Also the library in a child process (`luo-bench watch-child`), which
/// speaks the same protocol: `ready WORD`, then `NS WORD` per change.
pub fn child_process(
    driver: &mut Driver,
    program: &Path,
    args: &[&str],
    n: usize,
) -> Result<Vec<u64>, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
    let stdout = child.stdout.take().ok_or("no pipe from the C floor")?;
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            let (Some(first), Some(word)) = (words.next(), words.next()) else {
                eprintln!("watcher child: unexpected line '{line}'");
                break;
            };
            let state = State::from_word(word.as_bytes());
            if first == "ready" {
                let _ = ready_tx.send(state);
                continue;
            }
            match (first.parse::<u64>(), state) {
                (Ok(at), Some(state)) if tx.send((at, state)).is_ok() => {}
                _ => break,
            }
        }
    });
    let result = match ready_rx.recv_timeout(REPORT_TIMEOUT) {
        Ok(_) => driver.measure(&rx, n, FAST_GAP_US),
        Err(_) => Err(format!("{} did not start", program.display())),
    };
    // The child is ours; it sleeps in poll and is ended by its pid.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    driver.settle()?;
    result
}

/// (c) Re-reading the attribute every [`REREAD_PERIOD`] with `pread`, in a thread.
pub fn reread(driver: &mut Driver, n: usize) -> Result<Vec<u64>, String> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = thread::spawn(move || -> Result<(), String> {
        let file = sysfs::open().map_err(|err| format!("opening {STATE_PATH}: {err}"))?;
        let mut last = sysfs::read(&file)?;
        let _ = ready_tx.send(last);
        while !stopping.load(Ordering::Relaxed) {
            thread::sleep(REREAD_PERIOD);
            let now = sysfs::read(&file)?;
            if now != last {
                let at = monotonic_ns();
                last = now;
                if tx.send((at, now)).is_err() {
                    break;
                }
            }
        }
        Ok(())
    });
    let result = match ready_rx.recv_timeout(REPORT_TIMEOUT) {
        Ok(_) => driver.measure(&rx, n, REREAD_GAP_US),
        Err(_) => Err("the re-reading thread did not start".to_owned()),
    };
    stop.store(true, Ordering::Relaxed);
    let ended = thread
        .join()
        .unwrap_or_else(|_| Err("the re-reading thread panicked".to_owned()));
    driver.settle()?;
    let samples = result?;
    ended?;
    Ok(samples)
}
