//! Hooks: programs run when the state changes, with the change in their environment.
//!
//! A hooks directory holds one subdirectory per state, `prepared.d/`, `frozen.d/`,
//! `updated.d/` and `normal.d/`, each run the way `run-parts` runs a directory: the
//! executable regular files (or symlinks to them) whose names are made of ASCII letters,
//! digits, `_` and `-` (so `10-save` runs and `save.bak`, `.hidden` or `save~` do not), in
//! the byte order of their names. Each hook gets:
//!
//! | variable | value |
//! |---|---|
//! | `LUO_STATE` | the state now |
//! | `LUO_PREV_STATE` | the state before it (empty when the agent found the state at start) |
//! | `LUO_SEQ` | the number of the change (0 for the state found at start) |
//! | `LUO_TIME` | when the change was read, RFC 3339 in UTC |
//! | `LUO_STATE_FILE` | the state attribute watched |
//! | `LUO_GENERATION` | the live update generation, when it could be read |
//!
//! A hook's stdin is empty and its stdout goes to the caller's stderr, so it never mixes with
//! a data stream on stdout. It gets the caller's environment without the variables systemd
//! gives a service for itself ([`SERVICE_VARIABLES`]): only the agent speaks to systemd.
//!
//! # Trust
//!
//! The agent usually runs as root, so a hook is trusted the way sshd's `StrictModes` trusts
//! `authorized_keys`: it, its `STATE.d`, the hooks directory and every directory above them,
//! and a symlink's target with every directory above it, must be owned by root or the
//! agent's user and writable by their owner alone ([`trust`] has the details). What is not is
//! refused with the command that fixes it. The hooks directory is opened once
//! ([`HooksDir::open`]), walked by descriptor, and each hook is executed from the descriptor
//! that was checked (`execveat` with `AT_EMPTY_PATH`), never from its path again. A script's
//! interpreter then reads the script from `/dev/fd/N`, so scripts need `/proc` mounted.
//!
//! # Lifetime
//!
//! Each hook runs below a reaper process of its own (`PR_SET_CHILD_SUBREAPER`), which leads
//! its process group: whatever the hook starts stays below the reaper, even a grandchild
//! that calls `setsid`. Past its time limit, or when the caller [stops](Stop) it, everything
//! below the reaper gets `SIGTERM`, then `SIGKILL` after [`KILL_GRACE`], and the reaper is
//! reaped last. A process that even `SIGKILL` does not end within a few seconds is reported
//! ([`Outcome::Unstoppable`]) and the caller goes on. A hook that exits in time ends there:
//! what it left running in the background is left alone, as `run-parts` leaves it.

mod dir;
mod env;
mod process;
mod reaper;
mod stop;
mod tree;
pub mod trust;

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

pub use dir::{Hook, HooksDir, Listing};
pub use env::{HookEnv, SERVICE_VARIABLES};
pub use process::KILL_GRACE;
pub use stop::{Stop, Stopped};
pub use trust::{OpenError, Untrusted};

/// How a hook ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// It exited with status 0.
    Succeeded,
    /// It exited with another status, or was killed by a signal.
    Failed(ExitStatus),
    /// Its time ran out and it was stopped, with everything it started.
    TimedOut(Duration),
    /// It was stopped through [`Stop`], with everything it started.
    Stopped,
    /// Its time ran out or it was stopped, but `left` of its processes would not end even
    /// with `SIGKILL`; the caller went on without them.
    Unstoppable {
        /// How many processes were left.
        left: usize,
    },
    /// It could not be started.
    NotStarted(io::Error),
}

impl Outcome {
    /// Whether the hook succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::Failed(status) => write!(f, "failed ({status})"),
            Outcome::TimedOut(limit) => write!(
                f,
                "timed out after {} and was stopped",
                humantime::format_duration(*limit)
            ),
            Outcome::Stopped => f.write_str("was stopped with the agent"),
            Outcome::Unstoppable { left } => write!(
                f,
                "could not be stopped: {left} of its processes remain after SIGKILL"
            ),
            Outcome::NotStarted(err) => write!(f, "could not be started ({err})"),
        }
    }
}

/// Why the hooks of `state` did not all succeed, as a clause for a log line or an error:
/// `"NAME failed"` for the first `hook` that failed, or, without one (the state's directory
/// could not be read, or a hook in it was refused), `"the STATE hooks could not be run"`.
///
/// `state` is what names the state: a [`State`](crate::State), or its name.
pub fn failure(hook: Option<&Hook>, state: impl fmt::Display) -> String {
    hook.map_or_else(
        || format!("the {state} hooks could not be run"),
        |hook| format!("{} failed", hook.name),
    )
}

/// Runs `hook` from its checked descriptor with `env` for at most `timeout`, or until
/// `stop`; returns how it ended and how long it took.
pub fn run_hook(
    hook: &Hook,
    env: &HookEnv,
    timeout: Duration,
    stop: Option<&Stop>,
) -> (Outcome, Duration) {
    let mut command = Command::new(&hook.path);
    run(&mut command, Some(hook), env, timeout, stop)
}

/// Runs `command` as a hook with `env` for at most `timeout`; returns how it ended and how
/// long it took. Unlike [`run_hook`], the program is found by its path, unchecked.
pub fn run_command(mut command: Command, env: &HookEnv, timeout: Duration) -> (Outcome, Duration) {
    run(&mut command, None, env, timeout, None)
}

fn run(
    command: &mut Command,
    hook: Option<&Hook>,
    env: &HookEnv,
    timeout: Duration,
    stop: Option<&Stop>,
) -> (Outcome, Duration) {
    command.envs(env.vars());
    for name in SERVICE_VARIABLES {
        command.env_remove(name);
    }
    let started = Instant::now();
    let _running = match stop.map(Stop::begin) {
        Some(None) => return (Outcome::Stopped, started.elapsed()),
        Some(Some(running)) => Some(running),
        None => None,
    };
    let file = hook.map(|hook| hook.file.as_fd());
    let outcome = match process::run(command, file, timeout, stop) {
        Ok(process::Ended::Exited(status)) if status.success() => Outcome::Succeeded,
        Ok(process::Ended::Exited(status)) => Outcome::Failed(status),
        Ok(process::Ended::TimedOut) => Outcome::TimedOut(timeout),
        Ok(process::Ended::Stopped) => Outcome::Stopped,
        Ok(process::Ended::Unstoppable { left }) => Outcome::Unstoppable { left },
        Err(err) => Outcome::NotStarted(explain(err, hook)),
    };
    (outcome, started.elapsed())
}

/// `ENOENT` from `execveat` on a file that is there: a script whose interpreter cannot open
/// `/dev/fd/N`, because `/proc` is not mounted (or `/dev/fd` does not lead to it).
fn explain(err: io::Error, hook: Option<&Hook>) -> io::Error {
    let Some(hook) = hook else {
        return err;
    };
    if err.kind() != io::ErrorKind::NotFound {
        return err;
    }
    use std::os::fd::AsRawFd;
    let fd = hook.file.as_raw_fd();
    if std::path::Path::new(&format!("/dev/fd/{fd}")).exists() {
        return err;
    }
    io::Error::new(
        err.kind(),
        format!(
            "{err}: /dev/fd/{fd} does not exist, and a script's interpreter reads the script \
             from there: mount /proc (and link /dev/fd to /proc/self/fd)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_hook_the_failure_names_the_state() {
        assert_eq!(
            failure(None, crate::State::Prepared),
            "the prepared hooks could not be run"
        );
        assert_eq!(
            failure(None, "updated"),
            "the updated hooks could not be run"
        );
    }
}
