//! What a watcher costs while nothing happens: its system calls over [`WINDOW`], counted by
//! `strace`, and its context switches over the same time without tracing (a cross-check that
//! does not disturb the process).
//!
//! `strace` starts the watcher itself, with timestamps (`-ttt`), rather than attaching to it
//! (`-p`): attaching interrupts the call the watcher sleeps in, and the kernel's restart of
//! that call would be counted. Only calls that enter inside the window count; the call the
//! watcher was already sleeping in when the window opened does not.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::procfs::children_of;
use super::record::{self, Record};

/// How long the watcher is watched while idle.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Time given to the watcher after it says it is ready, to go to sleep.
const SETTLE: Duration = Duration::from_millis(500);

/// The system calls of one idle window.
#[derive(Clone, Debug, Default)]
pub struct Syscalls {
    /// How many calls entered during the window.
    pub total: u64,
    /// The same by name, most frequent first.
    pub by_name: Vec<(String, u64)>,
}

/// Counts the system calls `program args` makes during [`WINDOW`] once it has sent its
/// `READY` record on standard output.
pub fn syscalls(program: &Path, args: &[&str]) -> Result<Syscalls, String> {
    let mut strace = Command::new("strace")
        .args(["-f", "-ttt", "-qq"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start strace: {err}"))?;
    let trace = strace.stderr.take().ok_or("no pipe from strace")?;
    let collector = thread::spawn(move || {
        BufReader::new(trace)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let ready = wait_ready(&mut strace);
    let start = now_micros() + micros(SETTLE);
    if ready.is_ok() {
        thread::sleep(SETTLE + WINDOW + Duration::from_millis(100));
    }
    end_traced(&mut strace);
    let lines = collector.join().unwrap_or_default();
    ready?;
    let end = start + micros(WINDOW);
    let mut counts: Vec<(String, u64)> = Vec::new();
    for (at, name) in lines.iter().filter_map(|line| parse_line(line)) {
        if at < start || at >= end {
            continue;
        }
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name.to_owned(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Syscalls {
        total: counts.iter().map(|(_, c)| c).sum(),
        by_name: counts,
    })
}

/// Counts the context switches of `program args` (all threads) during [`WINDOW`] once it has
/// sent its `READY` record, without tracing it: each time an idle watcher wakes is one.
pub fn wakeups(program: &Path, args: &[&str]) -> Result<u64, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
    let result = wait_ready(&mut child).and_then(|()| {
        thread::sleep(SETTLE);
        let before = context_switches(child.id())?;
        thread::sleep(WINDOW);
        Ok(context_switches(child.id())?.saturating_sub(before))
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Reads the watcher's first report (its `READY` record, see [`super::record`]).
fn wait_ready(child: &mut Child) -> Result<(), String> {
    let stdout = child.stdout.as_mut().ok_or("no pipe from the watcher")?;
    let mut bytes = [0u8; record::SIZE];
    // The pipe stays open afterwards (a watcher that writes must not get EPIPE).
    match stdout.read_exact(&mut bytes) {
        Ok(()) if Record::decode(&bytes).kind == record::READY => Ok(()),
        Ok(()) => Err(format!(
            "the watcher's first report is not READY: {:?}",
            Record::decode(&bytes)
        )),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            Err("the watcher ended before it was ready".to_owned())
        }
        Err(err) => Err(format!("reading the watcher's first report: {err}")),
    }
}

/// Ends strace and the process it started: the tracee (strace's child, found by its parent
/// pid) first, which makes strace exit; strace itself if it lingers.
fn end_traced(strace: &mut Child) {
    for pid in children_of(strace.id()) {
        // SAFETY: plain kill(2) of a process this benchmark started (through strace).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(strace.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = strace.kill();
    let _ = strace.wait();
}

/// Voluntary plus involuntary context switches of every thread of `pid`.
fn context_switches(pid: u32) -> Result<u64, String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|err| format!("/proc/{pid}/task: {err}"))?;
    let mut total = 0;
    for task in tasks.filter_map(Result::ok) {
        let status = std::fs::read_to_string(task.path().join("status"))
            .map_err(|err| format!("{}: {err}", task.path().display()))?;
        total += status
            .lines()
            .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

/// Microseconds since the epoch, the clock of `strace -ttt`.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The entry time (µs since the epoch) and name of the call on one line of `strace -f -ttt`;
/// `None` for resumptions (`<... poll resumed>`), signals, exits and anything else.
fn parse_line(line: &str) -> Option<(u64, &str)> {
    let mut rest = line.trim_start();
    if rest.starts_with("[pid") {
        rest = rest[rest.find(']')? + 1..].trim_start();
    }
    let (stamp, call) = rest.split_once(' ')?;
    let (secs, frac) = stamp.split_once('.')?;
    let at = secs.parse::<u64>().ok()? * 1_000_000 + frac.parse::<u64>().ok()?;
    let name = call.trim_start().split('(').next()?;
    let is_call = !name.is_empty()
        && call.contains('(')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    is_call.then_some((at, name))
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn strace_lines() {
        assert_eq!(
            parse_line("1795455515.853316 poll([{fd=3, events=POLLPRI}], 1, -1 <unfinished ...>"),
            Some((1_795_455_515_853_316, "poll"))
        );
        assert_eq!(
            parse_line(
                "[pid  4464] 1795455515.000001 ppoll([{fd=3}], 1, {tv_sec=1}, NULL, 8) = 0 (Timeout)"
            ),
            Some((1_795_455_515_000_001, "ppoll"))
        );
        assert_eq!(
            parse_line("1795455515.853316 <... poll resumed>) = 1"),
            None
        );
        assert_eq!(
            parse_line("1795455515.853316 +++ killed by SIGKILL +++"),
            None
        );
        assert_eq!(
            parse_line("1795455515.853316 --- SIGCHLD {si_signo=SIGCHLD} ---"),
            None
        );
        assert_eq!(parse_line("ready normal"), None);
    }
}
