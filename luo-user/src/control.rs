//! The control device: send events and read the state through the v3 ioctls.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use luo_state::ioctl::{GET_STATE, GetStateArg, SET_EVENT, SetEventArg};
use luo_state::{Event, State, next_state};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater};

use crate::error::{Error, Op, Result};

/// The live update control device, held open.
///
/// The device admits one opener at a time: while a `Control` lives, every other agent's open
/// fails with [`Error::Busy`]. Drop it as soon as the work is done.
#[derive(Debug)]
pub struct Control {
    fd: OwnedFd,
    path: PathBuf,
}

impl Control {
    /// Opens the device at its standard path ([`luo_sysfs_abi::path::DEVICE_PATH`]).
    pub fn open_default() -> Result<Self> {
        Self::open(luo_sysfs_abi::path::DEVICE_PATH)
    }

    /// Opens the device at `path`.
    ///
    /// Fails with [`Error::NotFound`] when the module is not loaded, [`Error::PermissionDenied`]
    /// without root, [`Error::Busy`] when another agent holds it, and [`Error::Observer`] when
    /// the standard device is mainline's orchestrator (the observer flavour).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        // The flavours are told apart by what the interface shows, never by trying an ioctl:
        // mainline's device answers the v3 numbers with EINVAL, like a refused event.
        if path == Path::new(luo_sysfs_abi::path::DEVICE_PATH)
            && crate::flavour() == Some(luo_sysfs_abi::Flavour::Observer)
        {
            return Err(Error::Observer { path });
        }
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|errno| Error::from_errno(path.clone(), Op::OpenDevice, errno))?;
        Ok(Control { fd, path })
    }

    /// The path the device was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state with `GET_STATE`.
    pub fn state(&self) -> Result<State> {
        let mut arg = GetStateArg::request();
        self.ioctl_retrying(|fd| {
            // SAFETY: GET_STATE takes a pointer to a `struct liveupdate_ioctl_get_state`, whose
            // layout `GetStateArg` is (`repr(C)`, size asserted in luo-state); `size` tells
            // the kernel how many bytes it may write back, all within `arg`.
            unsafe {
                rustix::ioctl::ioctl(fd, Updater::<{ GET_STATE as Opcode }, _>::new(&mut arg))
            }
        })
        .map_err(|errno| Error::from_errno(self.path.clone(), Op::GetState, errno))?;
        State::from_u32(arg.state).ok_or(Error::UnknownStateNumber {
            path: self.path.clone(),
            raw: arg.state,
        })
    }

    /// Sends `event` with `SET_EVENT` and returns the state it moved the orchestrator to.
    ///
    /// The kernel applies the event before the ioctl returns, so success means the transition
    /// happened; the returned state is the event's destination in the v3 table (another
    /// change may follow at once). Nothing is read after a success, so nothing can fail after
    /// the event was applied. A refusal (`EINVAL`) becomes [`Error::EventRefused`], which
    /// reads the state to say why.
    pub fn send(&self, event: Event) -> Result<State> {
        let mut arg = SetEventArg::new(event);
        let sent = self.ioctl_retrying(|fd| {
            // SAFETY: SET_EVENT takes a pointer to a `struct liveupdate_ioctl_set_event`, whose
            // layout `SetEventArg` is (`repr(C)`, size asserted in luo-state); `size` limits
            // any copy back to `arg`.
            unsafe {
                rustix::ioctl::ioctl(fd, Updater::<{ SET_EVENT as Opcode }, _>::new(&mut arg))
            }
        });
        match sent {
            Ok(()) => Ok(destination(event)),
            Err(Errno::INVAL) => Err(Error::EventRefused {
                path: self.path.clone(),
                event,
                state: self.state().ok(),
            }),
            Err(errno) => Err(Error::from_errno(
                self.path.clone(),
                Op::SetEvent(event),
                errno,
            )),
        }
    }

    /// Starts a live update (`normal` to `prepared`).
    pub fn prepare(&self) -> Result<State> {
        self.send(Event::Prepare)
    }

    /// Abandons a live update (`prepared` or `frozen` to `normal`).
    pub fn cancel(&self) -> Result<State> {
        self.send(Event::Cancel)
    }

    /// Ends a live update after restoration (`updated` to `normal`).
    pub fn finish(&self) -> Result<State> {
        self.send(Event::Finish)
    }

    fn ioctl_retrying(
        &self,
        mut call: impl FnMut(&OwnedFd) -> rustix::io::Result<()>,
    ) -> rustix::io::Result<()> {
        loop {
            match call(&self.fd) {
                Err(Errno::INTR) => continue,
                other => return other,
            }
        }
    }
}

impl AsFd for Control {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Where `event` leads: in the v3 table every event has one destination, whatever state it
/// is accepted in.
fn destination(event: Event) -> State {
    State::OBSERVABLE
        .into_iter()
        .find_map(|state| next_state(state, event).ok())
        // Every event is accepted somewhere; `normal` is where three of four lead.
        .unwrap_or(State::Normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_the_destination_of_the_v3_table() {
        assert_eq!(destination(Event::Prepare), State::Prepared);
        assert_eq!(destination(Event::Freeze), State::Frozen);
        assert_eq!(destination(Event::Cancel), State::Normal);
        assert_eq!(destination(Event::Finish), State::Normal);
    }

    #[test]
    fn every_accepted_event_leads_to_its_destination_from_any_state() {
        for state in State::OBSERVABLE {
            for event in Event::ALL {
                if let Ok(next) = next_state(state, event) {
                    assert_eq!(next, destination(event), "{event} from {state}");
                }
            }
        }
    }
}
