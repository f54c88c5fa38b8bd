//! Change notification for a plain file (one outside sysfs): inotify on its directory.
//!
//! A plain file has no `POLLPRI`. Watching the file itself would follow its inode and miss an
//! atomic replacement (`mv new state`), so the watch is on the directory and keeps the events
//! that name the file: `IN_CLOSE_WRITE` (a writer finished, so a read sees whole content),
//! `IN_MOVED_TO` (replaced by a rename), `IN_DELETE` and `IN_MOVED_FROM` (gone). Events on the
//! directory itself (`IN_DELETE_SELF`, `IN_MOVE_SELF`, `IN_IGNORED`) and a queue overflow
//! count too: the next read says what happened.

use std::ffi::OsString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// An inotify instance watching one file's directory for that file's changes.
#[derive(Debug)]
pub(crate) struct DirWatch {
    fd: OwnedFd,
    name: OsString,
}

/// The events, on the directory, that may mean the file's content changed.
const WATCHED: WatchFlags = WatchFlags::CLOSE_WRITE
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

/// Events that concern the directory, not one entry: they count whatever name they carry.
const ABOUT_THE_DIRECTORY: ReadFlags = ReadFlags::DELETE_SELF
    .union(ReadFlags::MOVE_SELF)
    .union(ReadFlags::IGNORED)
    .union(ReadFlags::UNMOUNT)
    .union(ReadFlags::QUEUE_OVERFLOW);

impl DirWatch {
    /// Watches the directory of `path` for events on `path`'s name.
    pub(crate) fn new(path: &Path) -> rustix::io::Result<Self> {
        let name = path.file_name().ok_or(Errno::INVAL)?.to_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        inotify::add_watch(&fd, dir, WATCHED | WatchFlags::ONLYDIR)?;
        Ok(DirWatch { fd, name })
    }

    /// Reads every queued event without blocking; `true` if one concerns the file.
    pub(crate) fn drain(&self) -> rustix::io::Result<bool> {
        // Room for many events with names; more are read by the next loop turn.
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut relevant = false;
        loop {
            match reader.next() {
                Ok(event) => {
                    let named = event
                        .file_name()
                        .is_some_and(|name| name.to_bytes() == self.name.as_bytes());
                    relevant |= named || event.events().intersects(ABOUT_THE_DIRECTORY);
                }
                Err(Errno::AGAIN) => return Ok(relevant),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(errno),
            }
        }
    }

    /// Sleeps until an event about the file comes (`Ok(true)`) or `deadline` passes
    /// (`Ok(false)`); `None` waits without end. A passed deadline still looks once.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> rustix::io::Result<bool> {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if poll_in(&self.fd, left)? && self.drain()? {
                return Ok(true);
            }
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(false);
            }
        }
    }
}

/// One `poll` for `POLLIN` of at most `timeout` (`None`: no limit); `EINTR` is "not yet".
fn poll_in(fd: &OwnedFd, timeout: Option<Duration>) -> rustix::io::Result<bool> {
    // A timeout too large for a timespec is as good as none.
    let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    match rustix::event::poll(&mut fds, timeout.as_ref()) {
        Ok(0) | Err(Errno::INTR) => Ok(false),
        Ok(_) => Ok(true),
        Err(errno) => Err(errno),
    }
}

impl AsFd for DirWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
