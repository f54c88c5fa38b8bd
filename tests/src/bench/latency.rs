//! Latency from a transition's ioctl to the watchers' reports, and the ioctl's own cost.
//!
//! The driver takes a `CLOCK_MONOTONIC` time right before each `SET_EVENT` ioctl (prepare and
//! cancel in turn) and one right after it. Each watcher, a process of its own, takes one once
//! it has read the new word and sends it in a [`record`] on the pipe all the
//! watchers of its program share. The driver waits until every watcher has reported, then a
//! random gap, before the next transition, so that no two transitions coalesce and every
//! watcher is asleep when the next one comes.
//!
//! Programs are compared on one stream of transitions ([`compare`]): a fleet of watchers per
//! program, all alive, taking turns while the others are stopped. The host of a TCG guest is
//! shared, and its speed drifts by several times within a minute; programs measured one after
//! the other would each meet a different host, programs taking turns every few transitions
//! meet the same one.
//!
//! From each transition come: the latency of the last watcher to report (the time until every
//! watcher holds the new state), that of the first, and the ioctl's time as its caller sees it
//! (wall clock, which includes any time the caller lost to the watchers it woke) and in the
//! caller's own CPU time (the kernel's work for the caller: the transition and the wake-ups).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, PipeReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use luo_state::{Event, State};

use super::procfs::{self, children_of};
use super::record::{self, CHANGE, READY, Record};
use super::{Rng, monotonic_ns};
use crate::dev;

/// The gap between the last report and the next transition, in microseconds: long enough that
/// every watcher is back asleep in `poll`, random so that the transition does not fall at a
/// fixed phase of anything periodic in the guest.
pub const FAST_GAP_US: (u64, u64) = (1_000, 5_000);
/// The same for the re-reading watcher: uniform over one period, so the transition falls at a
/// random phase of its sleep.
pub const REREAD_GAP_US: (u64, u64) = (0, 100_000);
/// A transition whose reports are not all in by then is a failure, not a slow sample.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a fleet to start (TCG forks 128 processes in well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for a fleet to end once told to.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `CLOCK_THREAD_CPUTIME_ID` of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call's duration; the clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}

/// The median CPU time of [`Driver::toggle`]'s clock reads with nothing between them.
fn cpu_clock_cost() -> u64 {
    let samples: Vec<u64> = (0..1000)
        .map(|_| {
            let cpu0 = thread_cpu_ns();
            std::hint::black_box(monotonic_ns());
            std::hint::black_box(monotonic_ns());
            thread_cpu_ns().saturating_sub(cpu0)
        })
        .collect();
    super::Summary::of(&samples).p50
}

/// One transition as the driver saw it.
#[derive(Clone, Copy, Debug)]
struct Transition {
    /// `CLOCK_MONOTONIC` right before the ioctl.
    t0: u64,
    /// The ioctl's wall time.
    wall: u64,
    /// The ioctl's time in the caller's CPU time, the clock reads' own cost taken out.
    cpu: u64,
    /// The state it leads to.
    to: State,
}

/// The control device, issuing prepare and cancel in turn.
pub struct Driver {
    dev: File,
    state: State,
    rng: Rng,
    /// What the CPU-time reads around an ioctl cost by themselves (they are system calls),
    /// subtracted from each ioctl's CPU time.
    cpu_clock_cost: u64,
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
            cpu_clock_cost: cpu_clock_cost(),
        })
    }

    /// What the CPU-time reads around an ioctl cost by themselves, in nanoseconds (the median
    /// of the same reads with no ioctl between them); subtracted from each ioctl's CPU time.
    pub fn cpu_clock_cost(&self) -> u64 {
        self.cpu_clock_cost
    }

    /// The next transition.
    fn toggle(&mut self) -> Result<Transition, String> {
        let (event, next) = match self.state {
            State::Normal => (Event::Prepare, State::Prepared),
            _ => (Event::Cancel, State::Normal),
        };
        let cpu0 = thread_cpu_ns();
        let t0 = monotonic_ns();
        let result = dev::set_event(&self.dev, event);
        let t1 = monotonic_ns();
        let cpu1 = thread_cpu_ns();
        result
            .map_err(|errno| format!("SET_EVENT {event:?} from {}: errno {errno}", self.state))?;
        self.state = next;
        Ok(Transition {
            t0,
            wall: t1.saturating_sub(t0),
            cpu: cpu1
                .saturating_sub(cpu0)
                .saturating_sub(self.cpu_clock_cost),
            to: next,
        })
    }

    /// The driver's random numbers, for callers that take turns as [`compare`] does.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// One transition, untimed; returns the state it led to.
    pub fn transition(&mut self) -> Result<State, String> {
        Ok(self.toggle()?.to)
    }

    /// Back to `normal` if a measurement stopped half-way.
    pub fn settle(&mut self) -> Result<(), String> {
        if self.state != State::Normal {
            self.toggle()?;
        }
        Ok(())
    }

    fn gap(&mut self, gap_us: (u64, u64)) {
        thread::sleep(Duration::from_micros(self.rng.range(gap_us.0, gap_us.1)));
    }
}

/// What a run of transitions measured, in nanoseconds, one entry per transition.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// From before the ioctl to the last watcher's report.
    pub last: Vec<u64>,
    /// From before the ioctl to the first watcher's report.
    pub first: Vec<u64>,
    /// The ioctl's wall time.
    pub ioctl: Vec<u64>,
    /// The ioctl's time in the caller's CPU time.
    pub ioctl_cpu: Vec<u64>,
    /// How long the watchers took to start and read the state once (one entry per fleet).
    pub start: Vec<u64>,
}

impl Samples {
    /// Appends `other`'s samples.
    pub fn extend(&mut self, other: &Samples) {
        self.last.extend_from_slice(&other.last);
        self.first.extend_from_slice(&other.first);
        self.ioctl.extend_from_slice(&other.ioctl);
        self.ioctl_cpu.extend_from_slice(&other.ioctl_cpu);
        self.start.extend_from_slice(&other.start);
    }

    /// The samples split in `parts` runs of consecutive transitions (the last takes the rest);
    /// `start` stays with the first.
    fn split(self, parts: usize) -> Vec<Samples> {
        let n = self.last.len().max(self.ioctl.len());
        let size = n / parts.max(1);
        let chunk = |v: &[u64], i: usize| -> Vec<u64> {
            let end = if i + 1 == parts {
                v.len()
            } else {
                (i + 1) * size
            };
            v.get(i * size..end.min(v.len()))
                .unwrap_or_default()
                .to_vec()
        };
        (0..parts.max(1))
            .map(|i| Samples {
                last: chunk(&self.last, i),
                first: chunk(&self.first, i),
                ioctl: chunk(&self.ioctl, i),
                ioctl_cpu: chunk(&self.ioctl_cpu, i),
                start: if i == 0 {
                    self.start.clone()
                } else {
                    Vec::new()
                },
            })
            .collect()
    }
}

/// A watcher program: the C floor or `luo-bench watch VARIANT`. Both take the first watcher's
/// number and how many to start as their last two arguments, and then fork the watchers from
/// one process that stays their parent until its standard input closes.
#[derive(Clone, Debug)]
pub struct Program {
    /// The name in the report.
    pub name: &'static str,
    /// The executable.
    pub path: PathBuf,
    /// The arguments before the number.
    pub args: Vec<String>,
}

/// `watchers` processes of `program` watching the state, all reporting on one pipe, in a
/// process group of their own so that they can be stopped and continued together.
///
/// Several fleets are alive at once and take turns: the others are stopped (`SIGSTOP`), which
/// takes them off the attribute's wait queue (a stopped process has left `poll`), so only the
/// active fleet is woken and the ioctl's cost is that of one fleet. On `SIGCONT` a watcher
/// restarts its `poll`, finds the transitions it missed, catches up and sleeps again before
/// the next measured transition.
struct Fleet {
    name: &'static str,
    /// The process that forked the watchers, leader of their group; closing its standard
    /// input ends them all.
    launcher: Child,
    /// The watchers' pids.
    pids: Vec<i32>,
    pipe: PipeReader,
    /// Bytes read past the last whole record.
    pending: Vec<u8>,
    /// Whether each watcher has reported the current transition.
    seen: Vec<bool>,
    /// The state the watchers last reported (or read at start).
    last: State,
    stopped: bool,
    /// What this fleet measured.
    samples: Samples,
}

impl Fleet {
    /// Starts the processes and waits until each has read the state once (so each is armed)
    /// and sleeps in `poll`.
    fn start(program: &Program, watchers: usize, state: State) -> Result<Fleet, String> {
        let t0 = monotonic_ns();
        let (pipe, writer) = io::pipe().map_err(|err| format!("pipe: {err}"))?;
        let launcher = Command::new(&program.path)
            .args(&program.args)
            .args(["0".to_owned(), watchers.to_string()])
            .stdin(Stdio::piped())
            .stdout(writer)
            .process_group(0)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", program.path.display()))?;
        // `Command` has dropped its copy of the write end: only the watchers hold it now, so if
        // they all die, reads see the end.
        let mut fleet = Fleet {
            name: program.name,
            launcher,
            pids: Vec::new(),
            pipe,
            pending: Vec::new(),
            seen: vec![false; watchers],
            last: state,
            stopped: false,
            samples: Samples::default(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        for ready in 0..watchers {
            let rec = fleet
                .next(deadline)
                .map_err(|err| format!("{}: {ready} of {watchers} ready: {err}", fleet.name))?;
            if rec.kind != READY || rec.state != Some(state) {
                return Err(format!(
                    "{}: watcher {} started with {rec:?}, expected READY {state}",
                    fleet.name, rec.id
                ));
            }
            fleet.mark(rec.id)?;
        }
        fleet.seen.fill(false);
        fleet.pids = children_of(fleet.launcher.id());
        if fleet.pids.len() != watchers {
            return Err(format!(
                "{}: {} watcher processes, expected {watchers}",
                fleet.name,
                fleet.pids.len()
            ));
        }
        fleet.wait_all(deadline, 'S')?;
        fleet.samples.start.push(monotonic_ns() - t0);
        Ok(fleet)
    }

    /// Sends `signal` to the launcher and its watchers.
    fn signal(&self, signal: i32) -> Result<(), String> {
        let group = i32::try_from(self.launcher.id()).map_err(|_| "pid out of range")?;
        // SAFETY: plain kill(2) of the process group of a launcher this benchmark started.
        if unsafe { libc::kill(-group, signal) } < 0 {
            return Err(format!(
                "{}: kill: {}",
                self.name,
                io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Stops the fleet and waits until every watcher has stopped.
    fn park(&mut self) -> Result<(), String> {
        if !self.stopped {
            self.signal(libc::SIGSTOP)?;
            self.stopped = true;
            self.wait_all(Instant::now() + REPORT_TIMEOUT, 'T')?;
        }
        Ok(())
    }

    /// Continues the fleet; once each watcher has caught up with `state` (reporting it if it
    /// differs from what it saw last) and sleeps again, returns.
    fn activate(&mut self, state: State) -> Result<(), String> {
        if !self.stopped {
            return Ok(());
        }
        self.signal(libc::SIGCONT)?;
        self.stopped = false;
        let deadline = Instant::now() + REPORT_TIMEOUT;
        if self.last != state {
            self.collect(state, deadline)
                .map_err(|err| format!("catching up: {err}"))?;
            self.last = state;
        }
        // With no change to report, a watcher still wakes (the counter moved) and reads once.
        self.wait_all(deadline, 'S')
    }

    /// Waits until every watcher is in scheduler state `want`: `S`, asleep (a watcher sleeps
    /// only in `poll`), or `T`, stopped.
    fn wait_all(&self, deadline: Instant, want: char) -> Result<(), String> {
        for &pid in &self.pids {
            loop {
                match procfs::state_of(pid) {
                    Some(state) if state == want => break,
                    None => return Err(format!("{}: watcher process {pid} is gone", self.name)),
                    Some(state) if Instant::now() >= deadline => {
                        return Err(format!(
                            "{}: watcher process {pid} is in state {state}, not {want}",
                            self.name
                        ));
                    }
                    Some(_) => thread::sleep(Duration::from_micros(200)),
                }
            }
        }
        Ok(())
    }

    /// Records that watcher `id` reported, which it may do once per transition.
    fn mark(&mut self, id: u32) -> Result<(), String> {
        match self.seen.get_mut(id as usize) {
            Some(seen) if !*seen => {
                *seen = true;
                Ok(())
            }
            Some(_) => Err(format!("watcher {id} reported twice")),
            None => Err(format!("a report from watcher {id}, which does not exist")),
        }
    }

    /// Waits for every watcher's report of the change to `to`; returns the earliest and the
    /// latest report time.
    fn collect(&mut self, to: State, deadline: Instant) -> Result<(u64, u64), String> {
        let (mut first, mut last) = (u64::MAX, 0);
        for got in 0..self.seen.len() {
            let rec = self
                .next(deadline)
                .map_err(|err| format!("{got} of {} reports of {to}: {err}", self.seen.len()))?;
            if rec.kind != CHANGE || rec.state != Some(to) {
                return Err(format!("watcher {} sent {rec:?}, expected {to}", rec.id));
            }
            self.mark(rec.id)?;
            first = first.min(rec.ns);
            last = last.max(rec.ns);
        }
        self.seen.fill(false);
        Ok((first, last))
    }

    /// The next record, waiting until `deadline`.
    fn next(&mut self, deadline: Instant) -> Result<Record, String> {
        while self.pending.len() < record::SIZE {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no report in time".to_owned());
            }
            let mut pfd = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            // SAFETY: `pfd` is one valid pollfd for the call's duration, its fd open (`pipe`).
            let rc = unsafe { libc::poll(&mut pfd, 1, millis) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll on the pipe: {err}"));
            }
            if rc == 0 {
                continue;
            }
            // Several records may be waiting: take them all in one read.
            let mut buf = [0u8; 64 * record::SIZE];
            match self.pipe.read(&mut buf) {
                Ok(0) => return Err("every watcher has exited".to_owned()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("reading the pipe: {err}")),
            }
        }
        let mut bytes = [0u8; record::SIZE];
        bytes.copy_from_slice(&self.pending[..record::SIZE]);
        self.pending.drain(..record::SIZE);
        Ok(Record::decode(&bytes))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // A stopped launcher reads nothing: continue the group first. Then closing its
        // standard input tells the launcher to kill and reap its watchers.
        let _ = self.signal(libc::SIGCONT);
        drop(self.launcher.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.launcher.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        // A launcher that does not end is ours: kill its group.
        let _ = self.signal(libc::SIGKILL);
        let _ = self.launcher.wait();
    }
}

/// How a comparison runs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Watcher processes per program.
    pub watchers: usize,
    /// Measured transitions per program.
    pub transitions: usize,
    /// Transitions in a row for one program before the next takes its turn.
    pub block: usize,
    /// Transitions per program before the measured ones, not counted.
    pub warmup: usize,
    /// The random gap before each transition, in microseconds.
    pub gap_us: (u64, u64),
    /// Parts each program's samples are split in, in time order, for the spread.
    pub parts: usize,
}

/// Compares `programs` on the same transitions' stream: one fleet of `plan.watchers` per
/// program, all started, then taking turns by blocks of `plan.block` transitions, in a random
/// order within each turn, so that the host's slow phases fall on every program alike.
/// Returns each program's samples, split in `plan.parts` parts in time order (part `i` of
/// each program covers the same stretch of time). The state is `normal` after.
pub fn compare(
    driver: &mut Driver,
    programs: &[&Program],
    plan: Plan,
) -> Result<Vec<Vec<Samples>>, String> {
    let mut fleets = Vec::with_capacity(programs.len());
    for program in programs {
        let mut fleet = Fleet::start(program, plan.watchers, driver.state)?;
        fleet.park()?;
        fleets.push(fleet);
    }
    let result = take_turns(driver, &mut fleets, plan);
    let split = fleets
        .iter_mut()
        .map(|f| std::mem::take(&mut f.samples).split(plan.parts))
        .collect();
    drop(fleets);
    driver.settle()?;
    result.map(|()| split)
}

fn take_turns(driver: &mut Driver, fleets: &mut [Fleet], plan: Plan) -> Result<(), String> {
    let per_turn = plan.block.max(1);
    let turns = (plan.warmup + plan.transitions).div_ceil(per_turn);
    let mut order: Vec<usize> = (0..fleets.len()).collect();
    let mut active: Option<usize> = None;
    for turn in 0..turns {
        driver.rng.shuffle(&mut order);
        for &k in &order {
            if active != Some(k) {
                if let Some(a) = active {
                    fleets[a].park()?;
                }
                fleets[k].activate(driver.state)?;
                active = Some(k);
            }
            let fleet = &mut fleets[k];
            for i in 0..per_turn {
                let index = turn * per_turn + i;
                if index >= plan.warmup + plan.transitions {
                    break;
                }
                driver.gap(plan.gap_us);
                let t = driver.toggle()?;
                let (first, last) = fleet
                    .collect(t.to, Instant::now() + REPORT_TIMEOUT)
                    .map_err(|err| {
                        format!(
                            "{} x{}: transition {index}: {err}",
                            fleet.name, plan.watchers
                        )
                    })?;
                fleet.last = t.to;
                if index < plan.warmup {
                    continue;
                }
                let s = &mut fleet.samples;
                s.ioctl.push(t.wall);
                s.ioctl_cpu.push(t.cpu);
                s.first.push(first.saturating_sub(t.t0));
                s.last.push(last.saturating_sub(t.t0));
            }
        }
    }
    Ok(())
}

/// Runs `warmup` + `n` transitions without any watcher: the ioctl's cost alone.
pub fn no_watchers(driver: &mut Driver, warmup: usize, n: usize) -> Result<Samples, String> {
    let mut samples = Samples::default();
    for i in 0..warmup + n {
        driver.gap(FAST_GAP_US);
        let t = driver.toggle()?;
        if i >= warmup {
            samples.ioctl.push(t.wall);
            samples.ioctl_cpu.push(t.cpu);
        }
    }
    driver.settle()?;
    Ok(samples)
}

/// Samples kept per (program, number of watchers), one entry per part.
#[derive(Debug, Default)]
pub struct Table {
    parts: HashMap<(&'static str, usize), Vec<Samples>>,
}

impl Table {
    /// Adds the parts of `program` with `watchers` watchers.
    pub fn push(&mut self, program: &'static str, watchers: usize, parts: Vec<Samples>) {
        self.parts
            .entry((program, watchers))
            .or_default()
            .extend(parts);
    }

    /// Each part of `program` with `watchers` watchers.
    pub fn parts(&self, program: &str, watchers: usize) -> &[Samples] {
        self.parts
            .iter()
            .find(|((p, w), _)| *p == program && *w == watchers)
            .map_or(&[], |(_, parts)| parts.as_slice())
    }

    /// The start times of every fleet of `watchers` watchers, whatever the program.
    pub fn starts(&self, watchers: usize) -> Vec<u64> {
        self.parts
            .iter()
            .filter(|((_, w), _)| *w == watchers)
            .flat_map(|(_, parts)| parts.iter().flat_map(|r| r.start.iter().copied()))
            .collect()
    }

    /// Every part of `program` with `watchers` watchers, pooled.
    pub fn pooled(&self, program: &str, watchers: usize) -> Samples {
        let mut all = Samples::default();
        for part in self.parts(program, watchers) {
            all.extend(part);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_in_time_order() {
        let samples = Samples {
            last: (0..10).collect(),
            first: (0..10).collect(),
            ioctl: (0..10).collect(),
            ioctl_cpu: (0..10).collect(),
            start: vec![7],
        };
        let parts = samples.split(3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].last, [0, 1, 2]);
        assert_eq!(parts[2].last, [6, 7, 8, 9]);
        assert_eq!((parts[0].start.len(), parts[1].start.len()), (1, 0));
    }
}
