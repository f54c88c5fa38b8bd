//! Mainline LUO's sessions: files that survive a kexec.
//!
//! With the kernel booted with `liveupdate=on`, `/dev/liveupdate` is mainline's orchestrator
//! (luo's `flavour` file then says `observer`). A [`Session`] is a named set of preserved files:
//! create it before the kexec and preserve files in it ([`Session::preserve`]); in the next
//! kernel, retrieve it by name ([`Sessions::retrieve`]), take the files back by token
//! ([`Session::retrieve_fd`]) and [`Session::finish`] it.
//!
//! Two rules of the kernel shape this API:
//! - only one process may hold `/dev/liveupdate` open, so [`Sessions`] is opened for an
//!   operation and dropped; the session fds it hands out stay valid without it;
//! - a session lives while its fd is open: dropping an outgoing [`Session`] unpreserves its
//!   files, and dropping a retrieved one finishes it.

mod error;
pub mod uapi;

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater};

pub use error::{SessionError, SessionOp};
pub use uapi::SESSION_NAME_LENGTH;

use uapi::{FdArg, FinishArg, GetNameArg, SessionArg};

/// `/dev/liveupdate`, mainline's orchestrator, held open.
///
/// The kernel admits one opener at a time: drop it as soon as the sessions are created or
/// retrieved.
#[derive(Debug)]
pub struct Sessions {
    fd: OwnedFd,
    path: PathBuf,
}

impl Sessions {
    /// Opens mainline's orchestrator at its standard path.
    ///
    /// Fails with an error that says what to do when it is off ([`SessionError::Off`]), when
    /// the device is luo's own v3 device ([`SessionError::NotMainline`]), and when another
    /// process holds it ([`SessionError::Busy`], naming the holder where `/proc` shows it).
    pub fn open() -> Result<Self, SessionError> {
        Self::open_at(luo_sysfs_abi::path::DEVICE_PATH)
    }

    /// Opens mainline's orchestrator at `path`.
    pub fn open_at(path: impl Into<PathBuf>) -> Result<Self, SessionError> {
        let path = path.into();
        if error::device_is_luo_v3(&path) {
            return Err(SessionError::NotMainline { path });
        }
        let fd = rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| SessionError::from_errno(&path, SessionOp::Open, errno))?;
        Ok(Self { fd, path })
    }

    /// The path the device was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates an outgoing session named `name`: what is preserved in it crosses the next
    /// kexec while the returned [`Session`] (or a copy of its fd) stays open.
    pub fn create(&self, name: &str) -> Result<Session, SessionError> {
        self.session::<{ uapi::CREATE_SESSION as Opcode }>(SessionOp::Create(name.to_owned()), name)
    }

    /// Retrieves the incoming session `name` that the previous kernel handed over.
    pub fn retrieve(&self, name: &str) -> Result<Session, SessionError> {
        self.session::<{ uapi::RETRIEVE_SESSION as Opcode }>(
            SessionOp::Retrieve(name.to_owned()),
            name,
        )
    }

    fn session<const CMD: Opcode>(
        &self,
        op: SessionOp,
        name: &str,
    ) -> Result<Session, SessionError> {
        let mut arg = SessionArg {
            size: uapi::size_of_arg::<SessionArg>(),
            fd: -1,
            name: encode_name(name)?,
        };
        let fail = |errno| SessionError::from_errno(&self.path, op, errno);
        ioctl::<CMD, _>(&self.fd, &mut arg).map_err(fail)?;
        // SAFETY: On success the kernel installed a new descriptor for the session in this
        // process and handed its number over; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(arg.fd) };
        Ok(Session {
            fd,
            name: name.to_owned(),
        })
    }
}

impl AsFd for Sessions {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A session of mainline's orchestrator, held open.
#[derive(Debug)]
pub struct Session {
    fd: OwnedFd,
    name: String,
}

impl Session {
    /// Takes over a session's fd (received from another process, for example).
    ///
    /// The name is read back from the kernel (`GET_NAME`), so it is the session's own.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, SessionError> {
        let mut session = Self {
            fd,
            name: String::new(),
        };
        session.name = session.kernel_name()?;
        Ok(session)
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Preserves `file` under `token`: the next kernel hands it back through
    /// [`Session::retrieve_fd`] with the same token. In Linux 7.3 only memfds can be preserved.
    pub fn preserve(&self, file: impl AsFd, token: u64) -> Result<(), SessionError> {
        use std::os::fd::AsRawFd;
        let mut arg = FdArg {
            size: uapi::size_of_arg::<FdArg>(),
            fd: file.as_fd().as_raw_fd(),
            token,
        };
        ioctl::<{ uapi::PRESERVE_FD as Opcode }, _>(&self.fd, &mut arg)
            .map_err(|errno| self.error(SessionOp::Preserve { token }, errno))
    }

    /// Takes back the file preserved under `token` in the previous kernel.
    pub fn retrieve_fd(&self, token: u64) -> Result<OwnedFd, SessionError> {
        let mut arg = FdArg {
            size: uapi::size_of_arg::<FdArg>(),
            fd: -1,
            token,
        };
        ioctl::<{ uapi::RETRIEVE_FD as Opcode }, _>(&self.fd, &mut arg)
            .map_err(|errno| self.error(SessionOp::RetrieveFd { token }, errno))?;
        // SAFETY: On success the kernel installed a new descriptor for the file in this process
        // and handed its number over; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
    }

    /// Finishes a retrieved session: its files are this kernel's from now on. Finishing an
    /// empty session succeeds and does nothing.
    pub fn finish(&self) -> Result<(), SessionError> {
        let mut arg = FinishArg {
            size: uapi::size_of_arg::<FinishArg>(),
            reserved: 0,
        };
        ioctl::<{ uapi::FINISH as Opcode }, _>(&self.fd, &mut arg)
            .map_err(|errno| self.error(SessionOp::Finish, errno))
    }

    /// The name as the kernel knows it (`GET_NAME`).
    pub fn kernel_name(&self) -> Result<String, SessionError> {
        let mut arg = GetNameArg {
            size: uapi::size_of_arg::<GetNameArg>(),
            reserved: 0,
            name: [0; SESSION_NAME_LENGTH],
        };
        ioctl::<{ uapi::GET_NAME as Opcode }, _>(&self.fd, &mut arg)
            .map_err(|errno| self.error(SessionOp::GetName, errno))?;
        let len = arg
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(arg.name.len());
        Ok(String::from_utf8_lossy(&arg.name[..len]).into_owned())
    }

    fn error(&self, op: SessionOp, errno: Errno) -> SessionError {
        SessionError::Session {
            name: self.name.clone(),
            op,
            errno: errno.raw_os_error(),
        }
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Session> for OwnedFd {
    fn from(session: Session) -> Self {
        session.fd
    }
}

/// `name` as the kernel takes it: at most 63 bytes, no NUL, not empty.
fn encode_name(name: &str) -> Result<[u8; SESSION_NAME_LENGTH], SessionError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= SESSION_NAME_LENGTH || bytes.contains(&0) {
        return Err(SessionError::BadName {
            name: name.to_owned(),
        });
    }
    let mut out = [0; SESSION_NAME_LENGTH];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// The `_IO` command `CMD` with its in-out argument `arg`, retried on `EINTR`.
///
/// `CMD` must be one of `uapi`'s commands and `T` its argument struct.
fn ioctl<const CMD: Opcode, T>(fd: &OwnedFd, arg: &mut T) -> rustix::io::Result<()> {
    loop {
        // SAFETY: Every command of `uapi` takes a pointer to its argument struct, whose
        // `repr(C)` layout `uapi` asserts and `session_uapi` checks against the kernel's
        // header; callers pair each command with its struct, and the struct's `size` field
        // limits what the kernel copies back to `arg`.
        let result = unsafe { rustix::ioctl::ioctl(fd, Updater::<CMD, T>::new(arg)) };
        match result {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_63_bytes_fits_and_64_does_not() {
        assert!(encode_name(&"a".repeat(63)).is_ok());
        assert!(matches!(
            encode_name(&"a".repeat(64)),
            Err(SessionError::BadName { .. })
        ));
    }

    #[test]
    fn an_empty_name_or_one_with_a_nul_is_refused() {
        assert!(encode_name("").is_err());
        assert!(encode_name("a\0b").is_err());
    }

    #[test]
    fn the_numbers_are_io_on_type_0xba() {
        assert_eq!(uapi::CREATE_SESSION, 0xBA00);
        assert_eq!(uapi::RETRIEVE_SESSION, 0xBA01);
        assert_eq!(uapi::PRESERVE_FD, 0xBA40);
        assert_eq!(uapi::GET_NAME, 0xBA43);
    }
}
