//! What can go wrong with mainline's sessions, each error saying what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

/// What was being done when a session call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionOp {
    /// Opening `/dev/liveupdate`.
    Open,
    /// Creating the named session.
    Create(String),
    /// Retrieving the named incoming session.
    Retrieve(String),
    /// Preserving a file under a token.
    Preserve {
        /// The token.
        token: u64,
    },
    /// Retrieving the file of a token.
    RetrieveFd {
        /// The token.
        token: u64,
    },
    /// Finishing a session.
    Finish,
    /// Reading a session's name.
    GetName,
}

impl fmt::Display for SessionOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("open"),
            Self::Create(name) => write!(f, "create session '{name}'"),
            Self::Retrieve(name) => write!(f, "retrieve session '{name}'"),
            Self::Preserve { token } => write!(f, "preserve a file as token {token}"),
            Self::RetrieveFd { token } => write!(f, "retrieve the file of token {token}"),
            Self::Finish => f.write_str("finish"),
            Self::GetName => f.write_str("read the name"),
        }
    }
}

/// A failed call on mainline's sessions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `/dev/liveupdate` does not exist: mainline's orchestrator is off.
    #[error(
        "{path}: no such device: mainline's live update orchestrator is off; boot with \
         liveupdate=on (and KHO on: kho=on, or a kernel built with \
         CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT)"
    )]
    Off {
        /// The device path.
        path: PathBuf,
    },
    /// `/dev/liveupdate` is luo's own v3 device: the kernel runs luo standalone.
    #[error(
        "{path} is luo's v3 control device (/sys/kernel/liveupdate/flavour says standalone), \
         not mainline's sessions; boot with liveupdate=on to use sessions"
    )]
    NotMainline {
        /// The device path.
        path: PathBuf,
    },
    /// Another process holds `/dev/liveupdate`; the kernel admits one at a time.
    #[error(
        "{path} is held by {holder}; the kernel admits one opener at a time, so retry once it closes the device"
    )]
    Busy {
        /// The device path.
        path: PathBuf,
        /// Who holds it, as `/proc` shows it (`pid 42 (systemd)`), or `another process`.
        holder: String,
    },
    /// Opening needs privileges this process lacks.
    #[error("{path}: permission denied; mainline's sessions are for root (CAP_SYS_ADMIN)")]
    PermissionDenied {
        /// The device path.
        path: PathBuf,
    },
    /// The name is empty, too long, or holds a NUL.
    #[error(
        "session name '{name}' is not valid: it must be 1 to {max} bytes without NUL",
        max = super::SESSION_NAME_LENGTH - 1
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// A session of that name exists already.
    #[error("session '{name}' exists already; pick another name or close the one that holds it")]
    NameTaken {
        /// The name given.
        name: String,
    },
    /// No incoming session has that name.
    #[error(
        "no incoming session '{name}': the previous kernel handed none over under that name \
         (or this is not a live-updated boot)"
    )]
    NoSuchSession {
        /// The name given.
        name: String,
    },
    /// A call on a session failed.
    #[error("session '{name}': cannot {op}: {}", describe_session_errno(op, *errno))]
    Session {
        /// The session's name.
        name: String,
        /// What was being done.
        op: SessionOp,
        /// The raw errno.
        errno: i32,
    },
    /// Any other failure of the device.
    #[error("{path}: cannot {op}: {}", Errno::from_raw_os_error(*errno))]
    Device {
        /// The device path.
        path: PathBuf,
        /// What was being done.
        op: SessionOp,
        /// The raw errno.
        errno: i32,
    },
}

impl SessionError {
    /// The error for `errno` from `op` on the device at `path`.
    pub(super) fn from_errno(path: &Path, op: SessionOp, errno: Errno) -> Self {
        let path = path.to_path_buf();
        match (&op, errno) {
            (SessionOp::Open, Errno::NOENT | Errno::NODEV | Errno::NXIO) => Self::Off { path },
            (SessionOp::Open, Errno::BUSY) => Self::Busy {
                holder: holder(&path).unwrap_or_else(|| "another process".to_owned()),
                path,
            },
            (SessionOp::Open, Errno::ACCESS | Errno::PERM) => Self::PermissionDenied { path },
            (SessionOp::Create(name), Errno::EXIST) => Self::NameTaken { name: name.clone() },
            (SessionOp::Retrieve(name), Errno::NOENT) => Self::NoSuchSession { name: name.clone() },
            _ => Self::Device {
                path,
                op,
                errno: errno.raw_os_error(),
            },
        }
    }
}

/// What `errno` means for `op` on a session, and what to do.
fn describe_session_errno(op: &SessionOp, errno: i32) -> String {
    let errno = Errno::from_raw_os_error(errno);
    let hint = match (op, errno) {
        (SessionOp::Preserve { .. }, Errno::NOENT) => {
            "no handler can preserve this file; Linux 7.3 preserves memfds only (not hugetlb)"
        }
        (SessionOp::Preserve { .. }, Errno::EXIST) => {
            "the token is taken in this session, or the file is preserved already"
        }
        (SessionOp::Preserve { .. }, Errno::BADF) => "the file descriptor is not open",
        (SessionOp::RetrieveFd { .. }, Errno::NOENT) => "no file was preserved under this token",
        (
            SessionOp::Preserve { .. } | SessionOp::RetrieveFd { .. } | SessionOp::Finish,
            Errno::INVAL,
        ) => {
            "the call does not fit the session: preserve needs an outgoing session, retrieve \
             and finish an incoming one"
        }
        _ => "",
    };
    if hint.is_empty() {
        errno.to_string()
    } else {
        format!("{errno} ({hint})")
    }
}

/// Whether the device at `path` is luo's own v3 device: the flavour file says `standalone`.
pub(super) fn device_is_luo_v3(path: &Path) -> bool {
    path == Path::new(luo_sysfs_abi::path::DEVICE_PATH)
        && crate::flavour() == Some(crate::Flavour::Standalone)
}

/// Who holds `path` open, from `/proc/*/fd`: `pid N (COMM)`.
fn holder(path: &Path) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path));
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("pid {pid} ({})", comm.trim()));
        }
    }
    None
}
