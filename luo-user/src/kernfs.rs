//! One open file that announces changes the kernfs way, or a plain file re-read at an interval.
//!
//! The protocol (fs/kernfs/file.c): a read samples the file's event counter; `poll` reports
//! `POLLPRI | POLLERR` once the counter has moved past that sample; the reader then reads again
//! at offset 0. sysfs and cgroup files are kernfs files. A file anywhere else has no `POLLPRI`
//! (poll would sleep forever), so [`KernfsFile::open`] asks `fstatfs` where the file lives and
//! falls back to re-reading at an interval.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linux_raw_sys::general::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, SYSFS_MAGIC};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Op, Result};

/// How often a plain file is re-read unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest interval a plain file is re-read at: shorter ones are raised to this, so a
/// watcher never spins.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How long a wait on a kernfs file sleeps, by default, before it checks the file still exists.
///
/// Removing a kernfs file (removing a cgroup, say) does not wake a sleeping `poll`; only the
/// next `poll` call sees the removal. A waiter on such a file therefore sleeps at most this
/// long at a time, so it notices a removal within this time, at the cost of one `poll` call
/// per period. luo's module notifies before it removes its file, so [`crate::StateFile`]
/// turns this off (see [`KernfsFile::with_liveness`]) and an idle watcher makes no syscalls.
pub const LIVENESS_PERIOD: Duration = Duration::from_secs(1);

/// How a watcher learns that the file may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// The file is on sysfs or a cgroup file system (kernfs): `poll` for `POLLPRI`.
    Priority,
    /// The file is elsewhere (a regular file in a test or a container): re-read it at this
    /// interval. Changes are seen up to one interval late.
    Interval(Duration),
}

/// A file opened for watching the kernfs way: it keeps its descriptor for its whole life.
///
/// The descriptor is opened read-only, close-on-exec and non-blocking (so a FIFO given by
/// mistake fails instead of hanging).
#[derive(Debug)]
pub struct KernfsFile {
    // INVARIANT: `fd` is never replaced, so `as_raw_fd` returns the same open descriptor for the
    // whole life of the value (tokio's `AsyncFd` registration relies on it).
    fd: OwnedFd,
    path: PathBuf,
    wakeup: Wakeup,
    liveness: Option<Duration>,
}

impl KernfsFile {
    /// Opens `path`; a file outside sysfs and cgroup file systems is re-read every
    /// [`DEFAULT_INTERVAL`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with_interval(path, DEFAULT_INTERVAL)
    }

    /// Opens `path`; a file outside sysfs and cgroup file systems is re-read every `interval`
    /// (at least [`MIN_INTERVAL`]).
    pub fn open_with_interval(path: impl Into<PathBuf>, interval: Duration) -> Result<Self> {
        let path = path.into();
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|errno| Error::from_errno(path.clone(), Op::Open, errno))?;
        let wakeup =
            if is_kernfs(&fd).map_err(|e| Error::from_errno(path.clone(), Op::Statfs, e))? {
                Wakeup::Priority
            } else {
                Wakeup::Interval(interval.max(MIN_INTERVAL))
            };
        Ok(KernfsFile {
            fd,
            path,
            wakeup,
            liveness: Some(LIVENESS_PERIOD),
        })
    }

    /// Sets how long one sleep in `poll` lasts at most, so that a removal that wakes no one is
    /// still noticed; `None` sleeps until a notification, for files whose owner notifies before
    /// it removes them (luo's state attribute does). Default: [`LIVENESS_PERIOD`].
    pub fn with_liveness(mut self, liveness: Option<Duration>) -> Self {
        self.liveness = liveness;
        self
    }

    /// The longest single sleep in `poll` (see [`KernfsFile::with_liveness`]).
    pub fn liveness(&self) -> Option<Duration> {
        self.liveness
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How changes of this file are noticed.
    pub fn wakeup(&self) -> Wakeup {
        self.wakeup
    }

    /// Reads the file from offset 0 into `buf` and returns how many bytes were read.
    ///
    /// On a kernfs file this also re-arms the notification: the next [`KernfsFile::wait`]
    /// sleeps until a change after this read. `ENODEV` (the file was removed) is
    /// [`Error::Gone`].
    pub fn read_into(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match rustix::io::pread(&self.fd, &mut *buf, 0) {
                Ok(len) => return Ok(len),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(Error::from_errno(self.path.clone(), Op::Read, errno)),
            }
        }
    }

    /// Sleeps until the file may have changed since the last read (`Ok(true)`) or `deadline`
    /// passes (`Ok(false)`); `None` waits without end.
    ///
    /// With [`Wakeup::Priority`] this returns when `poll` reports `POLLPRI` or `POLLERR` (a
    /// change, or a removal that the next read reports); with [`Wakeup::Interval`] it returns
    /// after one interval. Either way the caller reads again and compares: a wake does not
    /// promise a different content. Signals (`EINTR`) do not cut the wait short.
    pub fn wait(&self, deadline: Option<Instant>) -> Result<bool> {
        match self.wakeup {
            Wakeup::Priority => self.wait_priority(deadline),
            Wakeup::Interval(interval) => Ok(wait_interval(interval, deadline)),
        }
    }

    /// Whether a kernfs file has a change or a removal pending, without sleeping.
    pub fn is_pending(&self) -> Result<bool> {
        self.poll_once(Some(Duration::ZERO))
    }

    fn wait_priority(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let left = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(false),
                },
            };
            let slice = match (left, self.liveness) {
                (Some(left), Some(liveness)) => Some(left.min(liveness)),
                (left, liveness) => left.or(liveness),
            };
            if self.poll_once(slice)? {
                return Ok(true);
            }
        }
    }

    /// One `poll` for `POLLPRI` of at most `timeout` (`None`: no limit); `EINTR` counts as
    /// "nothing yet".
    fn poll_once(&self, timeout: Option<Duration>) -> Result<bool> {
        // A timeout too large for a timespec is as good as none.
        let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
        let mut fds = [PollFd::new(&self.fd, PollFlags::PRI)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) | Err(Errno::INTR) => Ok(false),
            Ok(_) => {
                let revents = fds[0].revents();
                if revents.contains(PollFlags::NVAL) {
                    return Err(Error::from_errno(self.path.clone(), Op::Poll, Errno::BADF));
                }
                // POLLERR and POLLHUP come unasked; the read that follows says what they mean.
                Ok(revents.intersects(PollFlags::PRI | PollFlags::ERR | PollFlags::HUP))
            }
            Err(errno) => Err(Error::from_errno(self.path.clone(), Op::Poll, errno)),
        }
    }
}

/// Sleeps one interval, or until `deadline` if that comes first; `false` once it has passed.
fn wait_interval(interval: Duration, deadline: Option<Instant>) -> bool {
    let nap = match deadline {
        None => interval,
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => left.min(interval),
            _ => return false,
        },
    };
    // `thread::sleep` resumes after signals by itself.
    std::thread::sleep(nap);
    true
}

/// Whether `fd` is on a kernfs file system: sysfs, or cgroup (v2, and v1 which is kernfs too).
fn is_kernfs(fd: &OwnedFd) -> rustix::io::Result<bool> {
    let stat = rustix::fs::fstatfs(fd)?;
    // `f_type` is a signed or unsigned word depending on the architecture; magics are 32 bits.
    let magic = u32::try_from(stat.f_type).ok();
    Ok(matches!(
        magic,
        Some(SYSFS_MAGIC | CGROUP2_SUPER_MAGIC | CGROUP_SUPER_MAGIC)
    ))
}

impl AsFd for KernfsFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for KernfsFile {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_file_falls_back_to_the_interval() {
        let file = KernfsFile::open_with_interval("/proc/self/cmdline", Duration::from_millis(7));
        // procfs is not kernfs.
        assert_eq!(
            file.map(|f| f.wakeup()).ok(),
            Some(Wakeup::Interval(Duration::from_millis(7)))
        );
    }

    #[test]
    fn a_zero_interval_is_raised_so_nothing_spins() {
        let file = KernfsFile::open_with_interval("/proc/self/cmdline", Duration::ZERO);
        assert_eq!(
            file.map(|f| f.wakeup()).ok(),
            Some(Wakeup::Interval(MIN_INTERVAL))
        );
    }

    #[test]
    fn a_sysfs_file_is_polled() {
        let file = KernfsFile::open("/sys/kernel/uevent_seqnum");
        assert_eq!(file.map(|f| f.wakeup()).ok(), Some(Wakeup::Priority));
    }

    #[test]
    fn a_passed_deadline_returns_at_once() {
        assert!(!wait_interval(
            Duration::from_secs(60),
            Some(Instant::now())
        ));
    }
}
