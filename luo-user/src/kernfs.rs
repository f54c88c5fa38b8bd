//! One watched file: a kernfs file that announces changes with `POLLPRI`, or a plain file
//! watched through inotify on its directory (re-read at an interval where inotify cannot be
//! had).
//!
//! The kernfs protocol (fs/kernfs/file.c): a read samples the file's event counter; `poll`
//! reports `POLLPRI | POLLERR` once the counter has moved past that sample; the reader then
//! reads again at offset 0. sysfs and cgroup files are kernfs files. A file anywhere else has
//! no `POLLPRI` (poll would sleep forever), so [`KernfsFile::open`] asks `fstatfs` where the
//! file lives.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linux_raw_sys::general::{
    BCACHEFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC,
    EXT4_SUPER_MAGIC, F2FS_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, SYSFS_MAGIC, TMPFS_MAGIC,
    XFS_SUPER_MAGIC,
};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::dir_watch::DirWatch;
use crate::error::{Error, Op, Result};

/// How often a plain file without inotify is re-read unless told otherwise, and how long a
/// half-written plain file is given to be finished.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest interval a plain file is re-read at: shorter ones are raised to this, so a
/// watcher never spins.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How long a wait on a kernfs file sleeps, by default, before it checks the file still exists.
///
/// Removing a kernfs file (removing a cgroup, say) does not wake a sleeping `poll`; only the
/// next `poll` call sees the removal. A watcher of such a file therefore sleeps at most this
/// long at a time, so it notices a removal within this time, at the cost of one `poll` call
/// per period. luo's module notifies before it removes its attribute, so a watcher of the
/// state attribute sleeps without end (see [`Decode::LIVENESS`](crate::Decode::LIVENESS)).
pub const LIVENESS_PERIOD: Duration = Duration::from_secs(1);

/// How a watcher learns that the file may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wakeup {
    /// The file is on sysfs or a cgroup file system (kernfs): `poll` for `POLLPRI`.
    Priority,
    /// A plain file: inotify on its directory reports writes, renames and removals.
    Inotify,
    /// A plain file where inotify is not available (procfs, some network file systems, or the
    /// inotify limits reached): re-read it at this interval. Changes are seen up to one
    /// interval late.
    Interval(Duration),
}

/// A file opened for watching: a kernfs file keeps its descriptor for its whole life; a plain
/// file is opened anew at each read, so a replacement by rename and a removal are seen.
///
/// Descriptors are opened read-only, close-on-exec and non-blocking (so a FIFO given by
/// mistake fails instead of hanging).
#[derive(Debug)]
pub struct KernfsFile {
    // INVARIANT: `fd` is never replaced, so `as_raw_fd` returns the same open descriptor for the
    // whole life of the value (tokio's `AsyncFd` registration relies on it).
    fd: OwnedFd,
    path: PathBuf,
    kind: Kind,
    /// Plain files: the re-read interval, and how long a half-written read may stay so.
    interval: Duration,
    /// Kernfs files: the longest sleep of the watcher that reads this file (its content's
    /// [`Decode::LIVENESS`](crate::Decode::LIVENESS), set when a watcher takes the file).
    liveness: Option<Duration>,
}

#[derive(Debug)]
enum Kind {
    Kernfs,
    Inotify(DirWatch),
    Interval,
}

impl KernfsFile {
    /// Opens `path`; a plain file is watched through inotify, or re-read every
    /// [`DEFAULT_INTERVAL`] without it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with_interval(path, DEFAULT_INTERVAL)
    }

    /// Opens `path`; a plain file is watched through inotify, or re-read every `interval` (at
    /// least [`MIN_INTERVAL`]) without it.
    pub fn open_with_interval(path: impl Into<PathBuf>, interval: Duration) -> Result<Self> {
        let path = path.into();
        let fd = open_read(&path)?;
        let fs = file_system(&fd).map_err(|e| Error::from_errno(path.clone(), Op::Statfs, e))?;
        let kind = match fs {
            FileSystem::Kernfs => Kind::Kernfs,
            FileSystem::Local => match DirWatch::new(&path) {
                Ok(watch) => Kind::Inotify(watch),
                // No inotify to be had (limits reached): the interval still works.
                Err(_) => Kind::Interval,
            },
            FileSystem::Other => Kind::Interval,
        };
        Ok(KernfsFile {
            fd,
            path,
            kind,
            interval: interval.max(MIN_INTERVAL),
            liveness: Some(LIVENESS_PERIOD),
        })
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How changes of this file are noticed.
    pub fn wakeup(&self) -> Wakeup {
        match self.kind {
            Kind::Kernfs => Wakeup::Priority,
            Kind::Inotify(_) => Wakeup::Inotify,
            Kind::Interval => Wakeup::Interval(self.interval),
        }
    }

    /// How long one sleep of a watcher of this file lasts at most before it looks whether the
    /// file was removed: the watcher's content decides it ([`Decode::LIVENESS`]); `None` for a
    /// plain file, whose removal inotify reports or the next interval's read sees.
    ///
    /// [`Decode::LIVENESS`]: crate::Decode::LIVENESS
    pub fn liveness(&self) -> Option<Duration> {
        match self.kind {
            Kind::Kernfs => self.liveness,
            Kind::Inotify(_) | Kind::Interval => None,
        }
    }

    /// Records the liveness period of the watcher that takes this file.
    pub(crate) fn set_liveness(&mut self, liveness: Option<Duration>) {
        self.liveness = liveness;
    }

    /// For a plain file, how long to wait for a writer to finish before a read that does not
    /// decode is an error, and the re-read interval without inotify.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// The inotify descriptor of a plain file watched through inotify.
    #[cfg(feature = "tokio")]
    pub(crate) fn inotify_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.kind {
            Kind::Inotify(watch) => Some(watch.as_fd()),
            _ => None,
        }
    }

    /// Reads the file from offset 0 into `buf` and returns how many bytes were read.
    ///
    /// On a kernfs file this also re-arms the notification: the next [`KernfsFile::wait`]
    /// sleeps until a change after this read; `ENODEV` (the file was removed) is
    /// [`Error::Gone`]. A plain file is opened anew, so a file replaced by a rename is read at
    /// its new inode; a removed one is [`Error::Gone`].
    pub fn read_into(&self, buf: &mut [u8]) -> Result<usize> {
        match self.kind {
            Kind::Kernfs => self.pread(&self.fd, buf),
            Kind::Inotify(_) | Kind::Interval => match open_read(&self.path) {
                Ok(fd) => self.pread(&fd, buf),
                Err(Error::NotFound { path }) => Err(Error::Gone { path }),
                Err(err) => Err(err),
            },
        }
    }

    fn pread(&self, fd: &OwnedFd, buf: &mut [u8]) -> Result<usize> {
        loop {
            match rustix::io::pread(fd, &mut *buf, 0) {
                Ok(len) => return Ok(len),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(Error::from_errno(self.path.clone(), Op::Read, errno)),
            }
        }
    }

    /// Sleeps until the file may have changed since the last read (`Ok(true)`) or `deadline`
    /// passes (`Ok(false)`); `None` waits without end.
    ///
    /// A deadline that has already passed still looks once without sleeping: a pending
    /// notification is reported, and a file re-read at an interval reports `Ok(true)` (read
    /// it now). With [`Wakeup::Priority`] this returns when `poll` reports `POLLPRI` or
    /// `POLLERR` (a change, or a removal that the next read reports); with
    /// [`Wakeup::Inotify`] when an event names the file; with [`Wakeup::Interval`] after one
    /// interval (or at the deadline, if sooner). Either way the caller reads again and
    /// compares: a wake does not promise a different content. Signals (`EINTR`) do not cut
    /// the wait short.
    pub fn wait(&self, deadline: Option<Instant>) -> Result<bool> {
        match &self.kind {
            Kind::Kernfs => self.wait_priority(deadline),
            Kind::Inotify(watch) => watch
                .wait(deadline)
                .map_err(|errno| Error::from_errno(self.path.clone(), Op::Watch, errno)),
            Kind::Interval => {
                wait_interval(self.interval, deadline);
                Ok(true)
            }
        }
    }

    /// Whether a change or a removal is pending, without sleeping (a kernfs `POLLPRI`, or a
    /// queued inotify event about the file, which this consumes); always `true` for a file
    /// re-read at an interval.
    pub fn is_pending(&self) -> Result<bool> {
        self.wait(Some(Instant::now()))
    }

    fn wait_priority(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if self.poll_once(left)? {
                return Ok(true);
            }
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(false);
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

fn open_read(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|errno| Error::from_errno(path.to_path_buf(), Op::Open, errno))
}

/// Sleeps one interval, or until `deadline` if that comes first (not at all once it passed).
fn wait_interval(interval: Duration, deadline: Option<Instant>) {
    let nap = match deadline {
        None => interval,
        Some(deadline) => deadline
            .saturating_duration_since(Instant::now())
            .min(interval),
    };
    // `thread::sleep` resumes after signals by itself.
    std::thread::sleep(nap);
}

/// What a file system tells a watcher.
enum FileSystem {
    /// sysfs or cgroup (v2, and v1 which is kernfs too): `POLLPRI`.
    Kernfs,
    /// A common local disk or memory file system: every change is a write through this
    /// kernel's VFS, which inotify reports.
    Local,
    /// Anything else, re-read at an interval, which is right everywhere: procfs and other
    /// pseudo file systems change without inotify events, network file systems (NFS, 9p,
    /// FUSE, SMB) do not see other machines' writes, and a file system not listed here is
    /// not assumed to be either (ramfs, say; the tests use it for the interval).
    Other,
}

fn file_system(fd: &OwnedFd) -> rustix::io::Result<FileSystem> {
    let stat = rustix::fs::fstatfs(fd)?;
    // `f_type` is a signed or unsigned word depending on the architecture; magics are 32 bits.
    Ok(match u32::try_from(stat.f_type).ok() {
        Some(SYSFS_MAGIC | CGROUP2_SUPER_MAGIC | CGROUP_SUPER_MAGIC) => FileSystem::Kernfs,
        Some(
            TMPFS_MAGIC
            | EXT4_SUPER_MAGIC
            | XFS_SUPER_MAGIC
            | BTRFS_SUPER_MAGIC
            | F2FS_SUPER_MAGIC
            | BCACHEFS_SUPER_MAGIC
            | OVERLAYFS_SUPER_MAGIC,
        ) => FileSystem::Local,
        _ => FileSystem::Other,
    })
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
    fn a_procfs_file_falls_back_to_the_interval() {
        let file = KernfsFile::open_with_interval("/proc/self/cmdline", Duration::from_millis(7));
        // procfs is not kernfs, and its content changes without inotify events.
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
    fn a_regular_file_is_watched_through_inotify() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, "normal\n").unwrap();
        let file = KernfsFile::open(&path).unwrap();
        assert_eq!(file.wakeup(), Wakeup::Inotify);
    }

    #[test]
    fn a_passed_deadline_on_an_interval_file_reads_at_once() {
        let started = Instant::now();
        wait_interval(Duration::from_secs(60), Some(Instant::now()));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
