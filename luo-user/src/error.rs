//! The library's one error type: every message names the path, what failed, and what to do.
//!
//! The advice depends on the path and the operation, not on the errno alone: a missing
//! `/sys/kernel/liveupdate/state` means the module is not loaded, a missing file given by hand
//! means a wrong path; `EACCES` opening the control device means "run it as root", `EACCES`
//! reading a world-readable attribute does not.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use luo_state::{Event, State};
use luo_sysfs_abi::ParseError;
use luo_sysfs_abi::path::{DEVICE_PATH, GENERATION_PATH, STATE_PATH, SYSFS_DIR};

use crate::kexec::{CommandLineError, KexecError};

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation on a file, named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `open(2)` for reading.
    Open,
    /// `open(2)` of the control device, for reading and writing.
    OpenDevice,
    /// `fstatfs(2)`, which tells whether the file is on sysfs.
    Statfs,
    /// A `pread(2)` at offset 0.
    Read,
    /// `poll(2)` or `epoll` for a change.
    Poll,
    /// An inotify watch on the file's directory (for a file outside sysfs).
    Watch,
    /// The `GET_STATE` ioctl.
    GetState,
    /// The `SET_EVENT` ioctl carrying this event.
    SetEvent(Event),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open | Op::OpenDevice => f.write_str("open"),
            Op::Statfs => f.write_str("statfs"),
            Op::Read => f.write_str("read"),
            Op::Poll => f.write_str("poll"),
            Op::Watch => f.write_str("watch the directory of"),
            Op::GetState => f.write_str("get the state of"),
            Op::SetEvent(event) => write!(f, "send '{event}' to"),
        }
    }
}

/// Why the bytes read from a watched file are not a value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentError {
    /// A luo attribute's strict parser refused the bytes.
    Abi(ParseError),
    /// Another decoder (see [`crate::Decode`]) refused the bytes, for this reason.
    Other(String),
}

impl ContentError {
    /// The attribute parser's error, if the luo parser refused the bytes.
    pub fn as_parse_error(&self) -> Option<&ParseError> {
        match self {
            ContentError::Abi(err) => Some(err),
            ContentError::Other(_) => None,
        }
    }
}

impl From<ParseError> for ContentError {
    fn from(err: ParseError) -> Self {
        ContentError::Abi(err)
    }
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentError::Abi(err) => err.fmt(f),
            ContentError::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ContentError {}

/// Everything that can go wrong while reading, watching or driving the orchestrator.
///
/// The `Display` text is a whole sentence for a person: the path, what failed, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path does not exist (`ENOENT`).
    #[error("{path} does not exist: {}", not_found_hint(path))]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The transition counter is missing while the state attribute is there: the module is
    /// older than the counter. Callers can go on with the state alone, without counting the
    /// changes between two reads.
    #[error(
        "{path} does not exist, but the state does: the luo module is older than the transition \
         counter, so changes between two reads cannot be counted; read the state alone, or load \
         a newer module"
    )]
    NoTransitions {
        /// The counter's path.
        path: PathBuf,
    },

    /// The caller lacks the privilege (`EACCES` or `EPERM`).
    #[error("cannot {op} {path}: permission denied; {}", permission_hint(path, *op))]
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

    /// The file was removed while it was watched or open (`ENODEV` on a sysfs file, or a
    /// plain file deleted or renamed away).
    #[error("{path} is gone: {}", gone_hint(path))]
    Gone {
        /// The path of the removed file.
        path: PathBuf,
    },

    /// The device is mainline's session-based orchestrator (`flavour` says `observer`), which
    /// takes no v3 events: the state follows its sessions.
    #[error(
        "{path} is mainline's session-based live update orchestrator (/sys/kernel/liveupdate/flavour \
         says observer), not luo's v3 device, so there is no prepare, cancel or finish to send: \
         the state follows the sessions. Preserve a file in a session to prepare ('luoctl \
         prepare' asks the agent to), close the outgoing sessions to cancel ('luoctl cancel' \
         asks the agent to), and finish or close the incoming sessions to finish (the agent \
         finishes each one its workload restored; 'luoctl finish' asks it to)"
    )]
    Observer {
        /// The device path.
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
        "{path} does not hold what was expected: {source}; {}",
        content_hint(path, source)
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

    /// A live update kexec was refused or failed.
    #[error(transparent)]
    Kexec(#[from] KexecError),

    /// Any other failure of a system call.
    #[error("cannot {op} {path}: {source}{}", io_hint(*.op, source))]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        op: Op,
        /// The errno, as an I/O error.
        source: io::Error,
    },
}

impl Error {
    /// Classifies a failed system call on `path`: the errnos with a meaning of their own get
    /// their own variant, every other one becomes [`Error::Io`].
    pub(crate) fn from_errno(path: PathBuf, op: Op, errno: rustix::io::Errno) -> Self {
        use rustix::io::Errno;
        let opening = matches!(op, Op::Open | Op::OpenDevice);
        match errno {
            Errno::NOENT if opening => Error::NotFound { path },
            Errno::ACCESS | Errno::PERM => Error::PermissionDenied { path, op },
            Errno::BUSY if op == Op::OpenDevice => Error::Busy { path },
            Errno::NODEV if !opening => Error::Gone { path },
            _ => Error::Io {
                path,
                op,
                source: io::Error::from(errno),
            },
        }
    }

    /// Whether this error says the file went away (the module was unloaded, the file was
    /// removed) or is not there: the cases a follower waits out.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. } | Error::NotFound { .. })
    }
}

impl From<CommandLineError> for Error {
    fn from(err: CommandLineError) -> Self {
        Error::Kexec(KexecError::CommandLine(err))
    }
}

/// Which of luo's own interfaces a path is, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interface {
    Attribute,
    Device,
    Other,
}

impl Interface {
    fn of(path: &Path) -> Interface {
        if path == Path::new(DEVICE_PATH) {
            Interface::Device
        } else if path == Path::new(STATE_PATH)
            || path == Path::new(GENERATION_PATH)
            || path.starts_with(SYSFS_DIR)
        {
            Interface::Attribute
        } else {
            Interface::Other
        }
    }
}

fn not_found_hint(path: &Path) -> &'static str {
    match Interface::of(path) {
        Interface::Attribute | Interface::Device => {
            "the luo module is not loaded; load it (modprobe luo, or insmod luo.ko) and run this again"
        }
        Interface::Other => "check the path",
    }
}

fn permission_hint(path: &Path, op: Op) -> &'static str {
    match (Interface::of(path), op) {
        (Interface::Device, _) | (_, Op::OpenDevice | Op::GetState | Op::SetEvent(_)) => {
            "the control device is root's (mode 0600): run this as root (sudo)"
        }
        (Interface::Attribute, _) => {
            "the attribute is world-readable, so a security policy (SELinux, AppArmor, a container) refuses it"
        }
        (Interface::Other, _) => "check the permissions of the file and its directories (ls -l)",
    }
}

fn gone_hint(path: &Path) -> &'static str {
    match Interface::of(path) {
        Interface::Attribute | Interface::Device => {
            "the luo module was unloaded; load it again and start again (--follow waits for it)"
        }
        Interface::Other => {
            "the file was removed or renamed away (--follow waits for it to return)"
        }
    }
}

fn content_hint(path: &Path, source: &ContentError) -> &'static str {
    match (Interface::of(path), source) {
        (Interface::Attribute, _) => "is luoctl older than the kernel module?",
        (Interface::Other, ContentError::Abi(ParseError::BadGeneration(_))) => {
            "is it the live update generation attribute?"
        }
        (Interface::Other, ContentError::Abi(ParseError::BadTransitions(_))) => {
            "is it the live update transitions attribute?"
        }
        (Interface::Other, ContentError::Abi(_)) => "is it the live update state attribute?",
        _ => "is it the right file?",
    }
}

/// What to do about an errno that has no variant of its own, as the end of a sentence.
fn io_hint(op: Op, source: &io::Error) -> &'static str {
    use rustix::io::Errno;
    let errno = source.raw_os_error().map(Errno::from_raw_os_error);
    match (op, errno) {
        (_, Some(Errno::ISDIR)) => "; give the path of a file, not a directory",
        (Op::Open | Op::OpenDevice, Some(Errno::NXIO | Errno::NODEV)) => {
            "; no driver answers behind it: is the luo module loaded?"
        }
        (Op::GetState | Op::SetEvent(_), Some(Errno::NOTTY)) => {
            "; this is not the live update control device"
        }
        (Op::Read, Some(Errno::AGAIN)) => "; it is not a regular file (a FIFO or a socket?)",
        (Op::Watch, Some(Errno::NOSPC | Errno::MFILE)) => {
            "; raise fs.inotify.max_user_watches or max_user_instances"
        }
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

    fn device() -> PathBuf {
        PathBuf::from(DEVICE_PATH)
    }

    fn elsewhere() -> PathBuf {
        PathBuf::from("/tmp/somewhere/state")
    }

    #[test]
    fn a_missing_luo_attribute_says_the_module_is_not_loaded() {
        for path in [STATE_PATH, GENERATION_PATH, DEVICE_PATH] {
            let err = Error::from_errno(path.into(), Op::Open, Errno::NOENT);
            assert!(matches!(err, Error::NotFound { .. }));
            assert!(err.to_string().contains("module is not loaded"), "{err}");
        }
    }

    #[test]
    fn a_missing_path_given_by_hand_says_to_check_it() {
        let err = Error::from_errno(elsewhere(), Op::Open, Errno::NOENT);
        let text = err.to_string();
        assert!(!text.contains("module"), "{text}");
        assert!(text.contains("check the path"), "{text}");
    }

    #[test]
    fn ebusy_opening_the_device_names_another_agent() {
        let err = Error::from_errno(device(), Op::OpenDevice, Errno::BUSY);
        assert!(err.to_string().contains("another agent"), "{err}");
    }

    #[test]
    fn ebusy_elsewhere_does_not_blame_an_agent() {
        let err = Error::from_errno(elsewhere(), Op::Open, Errno::BUSY);
        assert!(!err.to_string().contains("agent"), "{err}");
    }

    #[test]
    fn eacces_on_the_device_says_root_is_needed() {
        for errno in [Errno::ACCESS, Errno::PERM] {
            let err = Error::from_errno(device(), Op::OpenDevice, errno);
            assert!(err.to_string().contains("as root"), "{err}");
        }
    }

    #[test]
    fn eacces_reading_an_attribute_does_not_ask_for_root() {
        let err = Error::from_errno(STATE_PATH.into(), Op::Read, Errno::ACCESS);
        let text = err.to_string();
        assert!(!text.contains("root"), "{text}");
        assert!(text.contains("world-readable"), "{text}");
    }

    #[test]
    fn eacces_on_another_file_says_to_check_permissions() {
        let err = Error::from_errno(elsewhere(), Op::Open, Errno::ACCESS);
        assert!(err.to_string().contains("ls -l"), "{err}");
    }

    #[test]
    fn enodev_on_the_luo_attribute_means_the_module_was_unloaded() {
        let err = Error::from_errno(STATE_PATH.into(), Op::Read, Errno::NODEV);
        assert!(err.is_gone());
        assert!(err.to_string().contains("module was unloaded"), "{err}");
    }

    #[test]
    fn a_removed_file_elsewhere_does_not_blame_the_module() {
        let err = Error::Gone { path: elsewhere() };
        let text = err.to_string();
        assert!(!text.contains("module"), "{text}");
        assert!(text.contains("removed"), "{text}");
    }

    #[test]
    fn a_refused_event_names_the_state_and_what_is_allowed() {
        let err = Error::EventRefused {
            path: device(),
            event: Event::Finish,
            state: Some(State::Prepared),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "{DEVICE_PATH} refused 'finish': event 'finish' is not allowed in state 'prepared'; \
                 in 'prepared' you can send: cancel"
            )
        );
    }

    #[test]
    fn a_refused_freeze_says_the_kernel_raises_it() {
        let err = Error::EventRefused {
            path: device(),
            event: Event::Freeze,
            state: Some(State::Prepared),
        };
        assert!(err.to_string().contains("raised by the kernel"), "{err}");
    }

    #[test]
    fn enotty_on_an_ioctl_says_it_is_not_the_device() {
        let err = Error::from_errno(elsewhere(), Op::GetState, Errno::NOTTY);
        assert!(
            err.to_string()
                .contains("not the live update control device"),
            "{err}"
        );
    }
}
