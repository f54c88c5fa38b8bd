//! The async watcher (feature `tokio`): the blocking watcher's protocol over tokio's reactor.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use luo_state::{State, StateSet};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::error::{Error, Op, Result};
use crate::kernfs::{KernfsFile, Wakeup};
use crate::watch::{Change, Decode, Seen, Tracker};

/// Follows a file like [`Watcher`](crate::Watcher), inside a tokio runtime.
///
/// A kernfs file is registered with the reactor for [`Interest::PRIORITY`] (epoll's
/// `EPOLLPRI`); a plain file is re-read every interval with a tokio timer. Every
/// [`AsyncWatcher::next`] is cancel-safe: dropping the future loses no change, since the
/// value is compared on the next read.
///
/// Must be created and used inside a tokio runtime with IO and time enabled.
#[derive(Debug)]
pub struct AsyncWatcher<T: Decode = State> {
    source: Source,
    tracker: Tracker<T>,
}

#[derive(Debug)]
enum Source {
    Priority(AsyncFd<KernfsFile>),
    Interval(KernfsFile, Duration),
}

impl Source {
    fn file(&self) -> &KernfsFile {
        match self {
            Source::Priority(fd) => fd.get_ref(),
            Source::Interval(file, _) => file,
        }
    }
}

impl AsyncWatcher<State> {
    /// Watches the orchestrator's state attribute at its standard path, with no periodic
    /// wake: luo's module notifies before it removes the file (see [`crate::StateFile`]).
    pub fn open_default() -> Result<Self> {
        Self::new(KernfsFile::open(luo_sysfs_abi::path::STATE_PATH)?.with_liveness(None))
    }

    /// Waits until the state is in `set` and returns it, at once if it already is. Wrap it in
    /// `tokio::time::timeout` for a deadline.
    pub async fn wait_for(&mut self, set: StateSet) -> Result<State> {
        self.wait_until(|state| set.has(*state)).await
    }
}

impl<T: Decode> AsyncWatcher<T> {
    /// Opens `path` (see [`KernfsFile::open`]), reads it once and registers it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::new(KernfsFile::open(path)?)
    }

    /// Watches an open file: reads it once (arming the notification), then registers it.
    pub fn new(file: KernfsFile) -> Result<Self> {
        let tracker = Tracker::first_read(&file)?;
        let source = match file.wakeup() {
            Wakeup::Interval(interval) => Source::Interval(file, interval),
            Wakeup::Priority => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(Error::Io {
                        path: file.path().to_path_buf(),
                        op: Op::Poll,
                        source: io::Error::other("no tokio runtime; create the watcher inside one"),
                    });
                }
                let path = file.path().to_path_buf();
                // SAFETY: `KernfsFile` owns its descriptor and never replaces it (its
                // INVARIANT), so `as_raw_fd` names the same open file for as long as the
                // `AsyncFd` owns the value.
                let registered =
                    unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY) };
                Source::Priority(registered.map_err(|err| Error::Io {
                    path,
                    op: Op::Poll,
                    source: err.into(),
                })?)
            }
        };
        Ok(AsyncWatcher { source, tracker })
    }

    /// The value at the last read.
    pub fn current(&self) -> T {
        self.tracker.current
    }

    /// The number of changes reported so far.
    pub fn seq(&self) -> u64 {
        self.tracker.seq
    }

    /// The watched file.
    pub fn file(&self) -> &KernfsFile {
        self.source.file()
    }

    /// Waits for the next change (wakes that show the same value are not reported). Ends with
    /// [`Error::Gone`] when the file is removed. Cancel-safe.
    pub async fn next(&mut self) -> Result<Change<T>> {
        loop {
            let seen = match &mut self.source {
                Source::Interval(file, interval) => {
                    tokio::time::sleep(*interval).await;
                    self.tracker.observe(file)?
                }
                // epoll is edge-triggered: a removed file announces itself to `poll` forever
                // but to epoll never again, so look with `poll` before sleeping.
                Source::Priority(fd) if fd.get_ref().is_pending()? => {
                    self.tracker.observe(fd.get_ref())?
                }
                Source::Priority(fd) => {
                    // Removing a kernfs file wakes no one, so unless the file's owner
                    // notifies first, wake up now and then to look.
                    let liveness = fd.get_ref().liveness().unwrap_or(Duration::MAX);
                    match tokio::time::timeout(liveness, fd.ready_mut(Interest::PRIORITY)).await {
                        Ok(Ok(mut guard)) => {
                            // Clear before reading: a notify that comes after the read
                            // sets readiness again (tokio keeps a newer event's tick).
                            guard.clear_ready();
                            self.tracker.observe(guard.get_inner())?
                        }
                        Ok(Err(err)) => {
                            return Err(Error::Io {
                                path: fd.get_ref().path().to_path_buf(),
                                op: Op::Poll,
                                source: err,
                            });
                        }
                        Err(_elapsed) => {
                            let file = fd.get_ref();
                            if file.is_pending()? {
                                self.tracker.observe(file)?
                            } else {
                                Seen::Nothing
                            }
                        }
                    }
                }
            };
            if let Seen::Change(change) = seen {
                return Ok(change);
            }
        }
    }

    /// Waits until `pred` holds for the value and returns it, at once if it already holds.
    pub async fn wait_until(&mut self, mut pred: impl FnMut(&T) -> bool) -> Result<T> {
        while !pred(&self.tracker.current) {
            self.next().await?;
        }
        Ok(self.tracker.current)
    }
}
