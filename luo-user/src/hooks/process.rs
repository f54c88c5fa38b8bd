//! The parent side of a hook: start it under its reaper (see [`reaper`](super::reaper)),
//! wait for it through a pidfd with a deadline, and when the time is up or the caller stops
//! it, stop everything it started: `SIGTERM`, [`KILL_GRACE`], then `SIGKILL`, the reaper
//! last. Every wait here is bounded.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};

use super::reaper::{self, CArray, Exec};
use super::stop::Stop;
use super::tree;

/// How long a hook gets between `SIGTERM` and `SIGKILL` once its time is up.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long `SIGKILL` is given to end a process before it is reported as unstoppable (one
/// in uninterruptible sleep, on a hung NFS server say).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often the processes below the reaper are looked for while they are being stopped.
const SCAN_EVERY: Duration = Duration::from_millis(20);

/// How a hook process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited (or was killed by a signal not ours) within its time.
    Exited(ExitStatus),
    /// Its time ran out, and it was stopped with everything it started.
    TimedOut,
    /// The caller stopped it, and it was stopped with everything it started.
    Stopped,
    /// Its time ran out or it was stopped, but `left` of its processes (or its reaper) are
    /// still there after `SIGKILL`.
    Unstoppable {
        /// How many processes are left.
        left: usize,
    },
}

/// Runs `command` (or, with `file`, that file by descriptor with `command`'s arguments and
/// environment) with stdin empty and stdout sent to this process's stderr (a hook never
/// writes into a data stream on stdout), for at most `timeout`, or until `stop`.
pub(crate) fn run(
    command: &mut Command,
    file: Option<BorrowedFd<'_>>,
    timeout: Duration,
    stop: Option<&Stop>,
) -> io::Result<Ended> {
    let argv = CArray::new(
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(c_string)
            .collect::<io::Result<_>>()?,
    );
    let envp = CArray::new(environment(command)?);
    let raw_file = file.map(|fd| fd.try_clone_to_owned()).transpose()?;
    let stdout = io::stderr().as_fd().try_clone_to_owned()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        // The reaper leads a group of its own, so the group is signalled without the agent.
        .process_group(0);
    let in_child = move || {
        let exec = Exec {
            file: raw_file.as_ref().map(OwnedFd::as_fd),
            argv: &argv,
            envp: &envp,
        };
        // SAFETY: this closure is only run by `Command`, in the child it just forked.
        unsafe { reaper::reap_and_exec(&exec) }
    };
    // SAFETY: `in_child` allocates nothing (the arrays are built above) and calls only
    // async-signal-safe functions, as a `pre_exec` closure must.
    unsafe { command.pre_exec(in_child) };
    let mut child = command.spawn()?;
    let deadline = Instant::now().checked_add(timeout);
    let stopped = match wait_until(&mut child, deadline, stop)? {
        Waited::Exited(status) => return Ok(Ended::Exited(status)),
        Waited::Deadline => false,
        Waited::Stop => true,
    };
    let left = stop_all(&mut child)?;
    Ok(match (left, stopped) {
        (0, false) => Ended::TimedOut,
        (0, true) => Ended::Stopped,
        (left, _) => Ended::Unstoppable { left },
    })
}

/// The environment `command` gives its program: this process's, with `command`'s changes.
fn environment(command: &Command) -> io::Result<Vec<CString>> {
    let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    for (name, value) in command.get_envs() {
        vars.retain(|(n, _)| n != name);
        if let Some(value) = value {
            vars.push((name.to_owned(), value.to_owned()));
        }
    }
    vars.into_iter()
        .map(|(name, value)| {
            let mut pair = name.into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            CString::new(pair).map_err(|_| nul_error())
        })
        .collect()
}

fn c_string(arg: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(arg.as_bytes()).map_err(|_| nul_error())
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "an argument or variable holds a NUL byte",
    )
}

/// Stops everything below the reaper, then the reaper; returns how many processes are left
/// (0 when all are gone and the reaper was reaped).
fn stop_all(child: &mut Child) -> io::Result<usize> {
    let Some(reaper) = pid_of(child) else {
        return Ok(0);
    };
    // The reaper first: from now on it does not exit on its own, so what the hook started
    // cannot be re-parented away from it. The group gets it too (the hook and its children
    // that kept the group); the others are found below the reaper.
    let _ = rustix::process::kill_process(reaper, Signal::TERM);
    let _ = rustix::process::kill_process_group(reaper, Signal::TERM);
    // A pid read from /proc may, in principle, be reused between the read and the signal;
    // the reaper reaps its children at once, which keeps that window short.
    for pid in tree::descendants(reaper) {
        let _ = rustix::process::kill_process(pid, Signal::TERM);
    }
    let grace_end = Instant::now() + KILL_GRACE;
    while !tree::descendants(reaper).is_empty() && Instant::now() < grace_end {
        std::thread::sleep(SCAN_EVERY);
    }
    // What a dying process started is re-parented to the reaper, so each scan finds it.
    let kill_end = Instant::now() + KILL_WAIT;
    let mut left = tree::descendants(reaper);
    while !left.is_empty() && Instant::now() < kill_end {
        for &pid in &left {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        std::thread::sleep(SCAN_EVERY);
        left = tree::descendants(reaper);
    }
    let _ = rustix::process::kill_process(reaper, Signal::KILL);
    let reaped = matches!(
        wait_until(child, Some(Instant::now() + KILL_WAIT), None)?,
        Waited::Exited(_)
    );
    Ok(left.len() + usize::from(!reaped))
}

/// What a wait ended on.
enum Waited {
    Exited(ExitStatus),
    Deadline,
    Stop,
}

/// Waits for `child` to exit until `deadline` (`None`: no deadline) or `stop`.
fn wait_until(
    child: &mut Child,
    deadline: Option<Instant>,
    stop: Option<&Stop>,
) -> io::Result<Waited> {
    let pidfd =
        pid_of(child).and_then(|pid| rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok());
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        if stop.is_some_and(Stop::is_stopped) {
            return Ok(Waited::Stop);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(Waited::Deadline);
        }
        // Without a pidfd (kernels before 5.3), look every 10 ms.
        let step = if pidfd.is_some() {
            left
        } else {
            Some(left.map_or(SCAN_EVERY / 2, |l| l.min(SCAN_EVERY / 2)))
        };
        let timeout = step.and_then(|t| Timespec::try_from(t).ok());
        // The pidfd becomes readable when the process exits; the stop event when stopped.
        let mut fds: Vec<PollFd<'_>> = pidfd
            .iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .chain(stop.map(|s| PollFd::from_borrowed_fd(s.fd(), PollFlags::IN)))
            .collect();
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

fn pid_of(child: &Child) -> Option<Pid> {
    Pid::from_raw(i32::try_from(child.id()).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_status_is_reported() {
        let ended = run(
            Command::new("sh").args(["-c", "exit 3"]),
            None,
            Duration::from_secs(20),
            None,
        );
        match ended.unwrap() {
            Ended::Exited(status) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signal_that_killed_the_hook_is_reported() {
        let ended = run(
            Command::new("sh").args(["-c", "kill -USR1 $$"]),
            None,
            Duration::from_secs(20),
            None,
        );
        match ended.unwrap() {
            Ended::Exited(status) => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(libc::SIGUSR1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_program_that_cannot_be_started_is_an_error() {
        let ended = run(
            &mut Command::new("/nonexistent/hook"),
            None,
            Duration::from_secs(20),
            None,
        );
        assert_eq!(ended.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_hook_past_its_time_is_stopped_with_its_children() {
        let started = Instant::now();
        let ended = run(
            Command::new("sh").args(["-c", "sleep 30; true"]),
            None,
            Duration::from_millis(200),
            None,
        );
        assert!(matches!(ended.unwrap(), Ended::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn waiting_for_a_quick_hook_does_not_wait_for_the_timeout() {
        let started = Instant::now();
        let ended = run(
            &mut Command::new("true"),
            None,
            Duration::from_secs(30),
            None,
        );
        assert!(matches!(ended.unwrap(), Ended::Exited(status) if status.success()));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_timeout_too_large_for_the_clock_means_no_deadline() {
        let ended = run(&mut Command::new("true"), None, Duration::MAX, None);
        assert!(matches!(ended.unwrap(), Ended::Exited(status) if status.success()));
    }

    #[test]
    fn a_stopped_hook_is_stopped_at_once() {
        let stop = Stop::new().unwrap();
        let stopper = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let _stopped = stopper.stop();
        });
        let ended = run(
            Command::new("sh").args(["-c", "sleep 30"]),
            None,
            Duration::from_secs(30),
            Some(&stop),
        );
        thread.join().unwrap();
        assert!(matches!(ended.unwrap(), Ended::Stopped));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
