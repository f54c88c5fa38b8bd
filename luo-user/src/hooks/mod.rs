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
//! a data stream on stdout. It runs in a process group of its own and has a time limit:
//! past it, the group gets `SIGTERM`, then `SIGKILL` after [`KILL_GRACE`].

mod dir;
mod env;
mod process;

use std::fmt;
use std::io;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

pub use dir::{Hook, HooksDir, Listing};
pub use env::HookEnv;
pub use process::KILL_GRACE;

/// How a hook ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// It exited with status 0.
    Succeeded,
    /// It exited with another status, or was killed by a signal.
    Failed(ExitStatus),
    /// Its time ran out and it was stopped.
    TimedOut(Duration),
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
            Outcome::NotStarted(err) => write!(f, "could not be started ({err})"),
        }
    }
}

/// Runs `command` as a hook with `env` for at most `timeout`; returns how it ended and how
/// long it took.
pub fn run_command(mut command: Command, env: &HookEnv, timeout: Duration) -> (Outcome, Duration) {
    command.envs(env.vars());
    // The hook is not the service: only the agent speaks to systemd (sd_notify(3)).
    command.env_remove("NOTIFY_SOCKET");
    let started = Instant::now();
    let outcome = match process::run(&mut command, timeout) {
        Ok(process::Ended::Exited(status)) if status.success() => Outcome::Succeeded,
        Ok(process::Ended::Exited(status)) => Outcome::Failed(status),
        Ok(process::Ended::TimedOut) => Outcome::TimedOut(timeout),
        Err(err) => Outcome::NotStarted(err),
    };
    (outcome, started.elapsed())
}
