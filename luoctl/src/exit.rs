//! Exit statuses: one per kind of failure a script may want to tell apart, and the mapping from
//! the library's errors.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use luo_sysfs_abi::path::{DEVICE_PATH, GENERATION_PATH, STATE_PATH};
use luo_user::Error;
use luo_user::agent::Summary;
use luo_user::hooks::OpenError;
use luo_user::keeper::ClientError;
use luo_user::kexec::KexecError;

/// Done: the state was reached, the changes were seen, the event was applied.
pub const OK: u8 = 0;
/// Any other error; the message names the path and what to do.
pub const ERROR: u8 = 1;
/// The command line is wrong (clap's own status).
pub const USAGE: u8 = 2;
/// The state machine refused: an event not allowed in the current state, or a kexec outside
/// `prepared`.
pub const REFUSED: u8 = 3;
/// The control device is held by another agent.
pub const BUSY: u8 = 4;
/// The interface is not there or went away: the module is not loaded, or was unloaded.
pub const GONE: u8 = 5;
/// The hooks directory is missing, cannot be read, or is not trusted: the agent cannot start,
/// and restarting it will not help (the unit's `RestartPreventExitStatus=`).
pub const HOOKS: u8 = 6;
/// A path given on the command line (or in the environment) does not exist: a mistake of the
/// caller's, unlike a missing default path, which means the module is not loaded ([`GONE`]).
pub const NO_SUCH_PATH: u8 = 7;
/// The agent ran, but a hook failed, timed out or could not be run.
pub const HOOK_FAILED: u8 = 8;
/// The agent ran, but a cancel or finish its hooks called for was refused or could not be
/// sent (after its retries); this wins over [`HOOK_FAILED`], since the live update is left
/// where the failed hooks stopped it.
pub const NOT_SENT: u8 = 9;
/// No agent listens on the socket (`kexec` without `--no-wait`, `prepare` in the observer
/// flavour), or it refused: a prepared hook failed, or the files could not be preserved.
pub const AGENT: u8 = 10;
/// The time ran out, as with coreutils `timeout`.
pub const TIMEOUT: u8 = 124;

/// Every status, with what it means, for the help and the man page.
pub const DOCUMENTED: [(u8, &str); 12] = [
    (OK, "success"),
    (ERROR, "error (the message names the path and what to do)"),
    (USAGE, "usage error"),
    (
        REFUSED,
        "refused by the state machine (event not allowed now, kexec outside prepared), or the \
         device is mainline's orchestrator, which takes no events",
    ),
    (BUSY, "the control device is busy (another agent holds it)"),
    (
        GONE,
        "the interface is not there or went away (module not loaded, unloaded)",
    ),
    (
        HOOKS,
        "the hooks directory is missing, unreadable or not trusted (agent)",
    ),
    (
        NO_SUCH_PATH,
        "a path given (--state-file, --device, --generation-file) does not exist",
    ),
    (
        HOOK_FAILED,
        "a hook failed, timed out or could not be run (agent; the others ran as usual)",
    ),
    (
        NOT_SENT,
        "a cancel or finish the hooks called for was refused or could not be sent, or a \
         session's finish failed (agent)",
    ),
    (
        AGENT,
        "no agent listens, or it refused: a prepared hook failed, the files could not be \
         preserved, or a session could not be finished (kexec; prepare, cancel and finish in \
         the observer flavour)",
    ),
    (
        TIMEOUT,
        "timed out (wait --timeout, watch --idle-timeout, kexec --wait-timeout, prepare \
         --timeout)",
    ),
];

/// Why a command did not succeed, and so its exit status.
#[derive(Debug)]
pub enum Failure {
    /// The library failed; its message names the path and what to do.
    Luo(Error),
    /// Writing the output failed.
    Output(io::Error),
    /// The time ran out (exit 124); the message says what was awaited.
    TimedOut(String),
    /// The hooks directory cannot be used.
    Hooks(OpenError),
    /// The agent's run ended, but not cleanly.
    Agent(Summary),
    /// Talking to the agent's socket failed, or the agent refused.
    Keeper(ClientError),
    /// The agent cannot listen on its socket (the error names the path).
    Socket(io::Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Luo(err)
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Failure::Keeper(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Output(err)
    }
}

/// The exit status for a library error.
pub fn status_of(err: &Error) -> u8 {
    match err {
        Error::EventRefused { .. }
        | Error::Observer { .. }
        | Error::Kexec(KexecError::NotPrepared { .. } | KexecError::StateChanged { .. }) => REFUSED,
        Error::Busy { .. } => BUSY,
        Error::NotFound { path } if !is_default(path) => NO_SUCH_PATH,
        Error::NotFound { .. } | Error::Gone { .. } => GONE,
        _ => ERROR,
    }
}

/// The exit status of an agent's run that was not clean.
pub fn agent_status(summary: &Summary) -> u8 {
    if summary.events_failed > 0 {
        NOT_SENT
    } else if summary.hooks_failed > 0 {
        HOOK_FAILED
    } else {
        OK
    }
}

/// Whether `path` is one of the interface's own paths, which the module creates.
fn is_default(path: &Path) -> bool {
    [STATE_PATH, DEVICE_PATH, GENERATION_PATH]
        .iter()
        .any(|default| path == Path::new(default))
}

/// Reports `result` on stderr and turns it into the exit status.
pub fn report(result: Result<(), Failure>) -> ExitCode {
    let code = match result {
        Ok(()) => OK,
        // A reader that went away (`luoctl watch | head -1`) is not an error.
        Err(Failure::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => OK,
        Err(Failure::Output(err)) => {
            eprintln!("luoctl: error: cannot write the output: {err}");
            ERROR
        }
        Err(Failure::Luo(err)) => {
            eprintln!("luoctl: error: {err}");
            status_of(&err)
        }
        Err(Failure::Hooks(err)) => {
            eprintln!("luoctl: error: the hooks directory cannot be used: {err}");
            HOOKS
        }
        Err(Failure::Agent(summary)) => {
            eprintln!(
                "luoctl agent: {} hook(s) failed, {} cancel, finish or session finish not done \
                 (see above)",
                summary.hooks_failed, summary.events_failed
            );
            agent_status(&summary)
        }
        Err(Failure::Keeper(err @ ClientError::Timeout { .. })) => {
            eprintln!("luoctl: timed out: {err}");
            TIMEOUT
        }
        Err(Failure::Keeper(err)) => {
            eprintln!("luoctl: error: {err}");
            AGENT
        }
        Err(Failure::Socket(err)) => {
            eprintln!(
                "luoctl agent: error: cannot listen: {err} (--no-socket runs the agent without it)"
            );
            ERROR
        }
        Err(Failure::TimedOut(message)) => {
            eprintln!("luoctl: timed out: {message}");
            TIMEOUT
        }
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use luo_user::{Event, State};

    use super::*;

    #[test]
    fn the_documented_statuses_are_distinct() {
        let mut codes: Vec<u8> = DOCUMENTED.iter().map(|(code, _)| *code).collect();
        codes.dedup();
        assert_eq!(codes.len(), DOCUMENTED.len());
    }

    #[test]
    fn a_refused_event_is_refused() {
        let err = Error::EventRefused {
            path: PathBuf::from("/dev/liveupdate"),
            event: Event::Finish,
            state: Some(State::Normal),
        };
        assert_eq!(status_of(&err), REFUSED);
    }

    #[test]
    fn a_kexec_outside_prepared_is_refused() {
        let err = Error::Kexec(KexecError::NotPrepared {
            path: PathBuf::from("/sys/kernel/liveupdate/state"),
            state: State::Normal,
        });
        assert_eq!(status_of(&err), REFUSED);
    }

    #[test]
    fn a_busy_device_and_a_missing_interface_have_their_own() {
        let path = PathBuf::from("/dev/liveupdate");
        assert_eq!(status_of(&Error::Busy { path: path.clone() }), BUSY);
        assert_eq!(status_of(&Error::Gone { path: path.clone() }), GONE);
        assert_eq!(status_of(&Error::NotFound { path }), GONE);
    }

    #[test]
    fn a_missing_path_given_by_hand_is_the_callers_mistake() {
        let path = PathBuf::from("/tmp/no-such-state");
        assert_eq!(status_of(&Error::NotFound { path }), NO_SUCH_PATH);
    }
}
