//! One hook process: started in its own process group, waited for with a timeout through a
//! pidfd (no polling loop), and its whole group stopped when the time is up.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};

/// How long a hook gets between `SIGTERM` and `SIGKILL` once its time is up.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How a hook process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited (or was killed by a signal not ours) within its time.
    Exited(ExitStatus),
    /// Its time ran out; its process group was sent `SIGTERM`, then `SIGKILL` if needed.
    TimedOut,
}

/// Runs `command` with stdin empty and stdout sent to this process's stderr (a hook never
/// writes into a data stream on stdout), in a process group of its own, for at most
/// `timeout`.
pub(crate) fn run(command: &mut Command, timeout: Duration) -> io::Result<Ended> {
    let stdout = io::stderr().as_fd().try_clone_to_owned()?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        // Its own group, so a timeout stops what it started too (a shell's children).
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    if let Some(status) = wait_until(&mut child, Some(deadline))? {
        return Ok(Ended::Exited(status));
    }
    signal_group(&child, Signal::TERM);
    if wait_until(&mut child, Some(Instant::now() + KILL_GRACE))?.is_none() {
        signal_group(&child, Signal::KILL);
        child.wait()?;
    }
    Ok(Ended::TimedOut)
}

/// Waits for `child` to exit until `deadline`; `Ok(None)` when it is still running then.
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    let Some(pidfd) = pidfd(child) else {
        return wait_polling(child, deadline);
    };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(None);
        }
        // The pidfd becomes readable when the process exits.
        let timeout = left.and_then(|t| Timespec::try_from(t).ok());
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

fn pidfd(child: &Child) -> Option<OwnedFd> {
    let pid = Pid::from_raw(i32::try_from(child.id()).ok()?)?;
    rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok()
}

/// Without pidfds (kernels before 5.3): look every 10 ms.
fn wait_polling(child: &mut Child, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal_group(child: &Child, signal: Signal) {
    if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
        // The group may be gone already; nothing to do then.
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_status_is_reported() {
        let ended = run(
            Command::new("sh").args(["-c", "exit 3"]),
            Duration::from_secs(20),
        );
        match ended.unwrap() {
            Ended::Exited(status) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hook_past_its_time_is_stopped_with_its_children() {
        let started = Instant::now();
        // The shell's child `sleep` is in the same group, so it is stopped too.
        let ended = run(
            Command::new("sh").args(["-c", "sleep 30; true"]),
            Duration::from_millis(200),
        );
        assert!(matches!(ended.unwrap(), Ended::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn waiting_for_a_quick_hook_does_not_wait_for_the_timeout() {
        let started = Instant::now();
        let ended = run(&mut Command::new("true"), Duration::from_secs(30));
        assert!(matches!(ended.unwrap(), Ended::Exited(status) if status.success()));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
