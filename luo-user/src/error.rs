//! The library's one error type: every message names the path, what failed, and what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

use luo_state::{Event, State};
use luo_sysfs_abi::ParseError;

use crate::handover::HandoverError;
use crate::kexec::KexecError;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation on a file, named in [`Error::Io`] messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `open(2)`.
    Open,
    /// `fstatfs(2)`, which tells whether the file is on sysfs.
    Statfs,
    /// A `pread(2)` at offset 0.
    Read,
    /// `poll(2)` or `epoll` for `POLLPRI`.
    Poll,
    /// The `GET_STATE` ioctl.
    GetState,
    /// The `SET_EVENT` ioctl carrying this event.
    SetEvent(Event),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open => f.write_str("open"),
            Op::Statfs => f.write_str("statfs"),
            Op::Read => f.write_str("read"),
            Op::Poll => f.write_str("poll"),
            Op::GetState => f.write_str("get the state of"),
            Op::SetEvent(event) => write!(f, "send '{event}' to"),
        }
    }
}

/// Why the bytes read from a watched file are not a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentError {
    /// The luo `state` attribute's strict parser refused the bytes.
    State(ParseError),
    /// Another decoder (see [`crate::Decode`]) refused the bytes, for this reason.
    Other(String),
}

impl From<ParseError> for ContentError {
    fn from(err: ParseError) -> Self {
        ContentError::State(err)
    }
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentError::State(err) => err.fmt(f),
            ContentError::Other(reason) => f.write_str(reason),
        }
    }
}

/// Everything that can go wrong while reading, watching or driving the orchestrator.
///
/// The `Display` text is a whole sentence for a person: the path, what failed, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path does not exist (`ENOENT`).
    #[error("{path} does not exist: the luo module is not loaded; load it or give the right path")]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The caller lacks the privilege (`EACCES` or `EPERM`).
    #[error("cannot {op} {path}: permission denied; this needs root (run it with sudo)")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// What was refused.
        op: Op,
    },

    /// Another process holds the control device open (`EBUSY`): it admits one opener.
    #[error(
        "{path} is busy: another agent holds the live update device open; stop it or wait for it to close the device"
    )]
    Busy {
        /// The device path.
        path: PathBuf,
    },

    /// The interface was removed while it was open: reads fail with `ENODEV`.
    #[error(
        "{path} is gone (module unloaded?): the live update interface was removed; load the module and start again"
    )]
    Gone {
        /// The path of the removed file.
        path: PathBuf,
    },

    /// The orchestrator refused an event in its current state (`EINVAL`).
    #[error("{path} refused '{event}': {}", refusal(*.event, *.state))]
    EventRefused {
        /// The device path.
        path: PathBuf,
        /// The event sent.
        event: Event,
        /// The state read right after the refusal, if it could be read.
        state: Option<State>,
    },

    /// The file's content is not what its decoder expects.
    #[error(
        "{path} does not hold what was expected: {source}; is it the live update state attribute?"
    )]
    Content {
        /// The path read.
        path: PathBuf,
        /// What is wrong with the bytes.
        source: ContentError,
    },

    /// The control device answered a state number this library does not know.
    #[error("{path} reported unknown state number {raw}; is luoctl older than the kernel module?")]
    UnknownStateNumber {
        /// The device path.
        path: PathBuf,
        /// The number the kernel wrote.
        raw: u32,
    },

    /// A kernel command line (`/proc/cmdline` or a copy) could not be read.
    #[error("cannot read the kernel command line {path}: {source}")]
    CommandLine {
        /// The path read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// The live update marker on a kernel command line is malformed.
    #[error("{path}: {source}")]
    Handover {
        /// The command line's path.
        path: PathBuf,
        /// What is wrong with the marker.
        source: HandoverError,
    },

    /// A live update kexec was refused or failed.
    #[error(transparent)]
    Kexec(#[from] KexecError),

    /// Any other failure of a system call.
    #[error("cannot {op} {path}: {source}{}", hint(*.op, source))]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        op: Op,
        /// The errno, as an I/O error.
        source: io::Error,
    },
}

impl ContentError {
    /// The state parser's error, if the luo parser refused the bytes.
    pub fn as_parse_error(&self) -> Option<&ParseError> {
        match self {
            ContentError::State(err) => Some(err),
            ContentError::Other(_) => None,
        }
    }
}

impl std::error::Error for ContentError {}

impl Error {
    /// Classifies a failed system call on `path`: the errnos with a meaning of their own get
    /// their own variant, every other one becomes [`Error::Io`].
    pub(crate) fn from_errno(path: PathBuf, op: Op, errno: rustix::io::Errno) -> Self {
        use rustix::io::Errno;
        match errno {
            Errno::NOENT if op == Op::Open => Error::NotFound { path },
            Errno::ACCESS | Errno::PERM => Error::PermissionDenied { path, op },
            Errno::BUSY if op == Op::Open => Error::Busy { path },
            Errno::NODEV if op != Op::Open => Error::Gone { path },
            _ => Error::Io {
                path,
                op,
                source: io::Error::from(errno),
            },
        }
    }

    /// Whether this error says the interface went away (the module was unloaded).
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. })
    }
}

/// What to do about an errno that has no variant of its own, as the end of a sentence.
fn hint(op: Op, source: &io::Error) -> &'static str {
    use rustix::io::Errno;
    let errno = source.raw_os_error().map(Errno::from_raw_os_error);
    match (op, errno) {
        (_, Some(Errno::ISDIR)) => "; give the path of a file, not a directory",
        (Op::Open, Some(Errno::NXIO | Errno::NODEV)) => {
            "; no driver answers behind it: is the luo module loaded?"
        }
        (Op::GetState | Op::SetEvent(_), Some(Errno::NOTTY)) => {
            "; this is not the live update control device"
        }
        (Op::Read, _) => "; is it the live update state attribute?",
        _ => "",
    }
}

/// Why an event was refused, from the state read after the refusal.
fn refusal(event: Event, state: Option<State>) -> String {
    let Some(state) = state else {
        return "the orchestrator refused it (EINVAL) and its state could not be read".into();
    };
    match luo_state::ioctl::set_event(state, event.as_u32()) {
        Err(reason) => {
            let allowed = Event::ALL
                .into_iter()
                .filter(|e| luo_state::ioctl::set_event(state, e.as_u32()).is_ok())
                .map(Event::word)
                .collect::<Vec<_>>();
            if allowed.is_empty() {
                format!("{reason}; nothing can be sent in '{state}', wait for it to change")
            } else {
                format!(
                    "{reason}; in '{state}' you can send: {}",
                    allowed.join(", ")
                )
            }
        }
        // The state changed between the refusal and the read.
        Ok(_) => format!("the orchestrator refused it (EINVAL); the state is now '{state}'"),
    }
}

#[cfg(test)]
mod tests {
    use rustix::io::Errno;

    use super::*;

    fn path() -> PathBuf {
        PathBuf::from(luo_sysfs_abi::path::DEVICE_PATH)
    }

    #[test]
    fn enoent_on_open_says_the_module_is_not_loaded() {
        let err = Error::from_errno(path(), Op::Open, Errno::NOENT);
        assert!(matches!(err, Error::NotFound { .. }));
        assert!(err.to_string().contains("module is not loaded"), "{err}");
    }

    #[test]
    fn ebusy_on_open_names_another_agent() {
        let err = Error::from_errno(path(), Op::Open, Errno::BUSY);
        assert!(err.to_string().contains("another agent"), "{err}");
    }

    #[test]
    fn eacces_and_eperm_say_root_is_needed() {
        for errno in [Errno::ACCESS, Errno::PERM] {
            let err = Error::from_errno(path(), Op::Open, errno);
            assert!(err.to_string().contains("needs root"), "{err}");
        }
    }

    #[test]
    fn enodev_on_read_means_the_interface_is_gone() {
        let err = Error::from_errno(path(), Op::Read, Errno::NODEV);
        assert!(err.is_gone());
        assert!(err.to_string().contains("module unloaded?"), "{err}");
    }

    #[test]
    fn a_refused_event_names_the_state_and_what_is_allowed() {
        let err = Error::EventRefused {
            path: path(),
            event: Event::Finish,
            state: Some(State::Prepared),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "{} refused 'finish': event 'finish' is not allowed in state 'prepared'; \
                 in 'prepared' you can send: cancel",
                luo_sysfs_abi::path::DEVICE_PATH
            )
        );
    }

    #[test]
    fn a_refused_freeze_says_the_kernel_raises_it() {
        let err = Error::EventRefused {
            path: path(),
            event: Event::Freeze,
            state: Some(State::Prepared),
        };
        assert!(err.to_string().contains("raised by the kernel"), "{err}");
    }

    #[test]
    fn enotty_on_an_ioctl_says_it_is_not_the_device() {
        let err = Error::from_errno(path(), Op::GetState, Errno::NOTTY);
        assert!(
            err.to_string()
                .contains("not the live update control device"),
            "{err}"
        );
    }
}
