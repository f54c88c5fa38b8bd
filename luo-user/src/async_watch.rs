//! The async watcher (feature `tokio`): the blocking watcher's protocol over tokio's reactor,
//! and a [`Stream`] of its changes.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use luo_state::{State, StateSet};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::error::{Error, Op, Result};
use crate::kernfs::KernfsFile;
use crate::watch::{Change, Decode, Seen, Tracker};

/// Follows a file like [`Watcher`](crate::Watcher), inside a tokio runtime.
///
/// A kernfs file is registered with the reactor for [`Interest::PRIORITY`] (epoll's
/// `EPOLLPRI`); a plain file's inotify descriptor for [`Interest::READABLE`]; a plain file
/// without inotify is re-read every interval with a tokio timer. Every [`AsyncWatcher::next`]
/// is cancel-safe: dropping the future loses no change, since the value is compared on the
/// next read. [`AsyncWatcher::into_stream`] gives the changes as a [`Stream`].
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
    /// The file, and a duplicate of its inotify descriptor registered with the reactor (both
    /// name one inotify instance, so either drains its queue).
    Inotify(AsyncFd<OwnedFd>, KernfsFile),
    Interval(KernfsFile),
}

impl Source {
    fn file(&self) -> &KernfsFile {
        match self {
            Source::Priority(fd) => fd.get_ref(),
            Source::Inotify(_, file) | Source::Interval(file) => file,
        }
    }
}

impl AsyncWatcher<State> {
    /// Watches the orchestrator's state attribute at its standard path.
    pub fn open_default() -> Result<Self> {
        Self::open(luo_sysfs_abi::path::STATE_PATH)
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
    pub fn new(mut file: KernfsFile) -> Result<Self> {
        file.set_liveness(T::LIVENESS);
        let tracker = Tracker::first_read(&file)?;
        let path = file.path().to_path_buf();
        let io_error = |source: io::Error| Error::Io {
            path: path.clone(),
            op: Op::Poll,
            source,
        };
        let needs_reactor = !matches!(file.wakeup(), crate::Wakeup::Interval(_));
        if needs_reactor && tokio::runtime::Handle::try_current().is_err() {
            return Err(io_error(io::Error::other(
                "no tokio runtime; create the watcher inside one",
            )));
        }
        let source = if let Some(inotify) = file.inotify_fd() {
            let inotify = inotify.try_clone_to_owned().map_err(&io_error)?;
            // SAFETY: the `AsyncFd` owns this `OwnedFd`, so the descriptor stays open until
            // the `AsyncFd` is dropped (which deregisters it first), and an `OwnedFd` always
            // returns the same descriptor from `as_raw_fd`. Nothing takes it out: we never
            // call `get_mut` or `into_inner`.
            let registered =
                unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) };
            Source::Inotify(registered.map_err(|err| io_error(err.into()))?, file)
        } else if file.wakeup() == crate::Wakeup::Priority {
            // SAFETY: the `AsyncFd` owns the `KernfsFile`, which owns its `OwnedFd` in a
            // private field that no method replaces or closes (its INVARIANT), so the
            // descriptor stays open and `as_raw_fd` returns it until the `AsyncFd` is dropped
            // (which deregisters it first). We never call `get_mut` or `into_inner`.
            let registered = unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY) };
            Source::Priority(registered.map_err(|err| io_error(err.into()))?)
        } else {
            Source::Interval(file)
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
            let tracker = &mut self.tracker;
            let seen = match &mut self.source {
                Source::Interval(file) => {
                    tokio::time::sleep(file.interval()).await;
                    tracker.observe(file, true)?
                }
                // epoll is edge-triggered: a removed file announces itself to `poll` forever
                // but to epoll never again, so look with `poll` before sleeping.
                Source::Priority(fd) if fd.get_ref().is_pending()? => {
                    tracker.observe(fd.get_ref(), true)?
                }
                Source::Priority(fd) => {
                    // Removing a kernfs file wakes no one, so unless the file's owner
                    // notifies first (see `Decode::LIVENESS`), wake up now and then to look.
                    let liveness = fd.get_ref().liveness();
                    let ready = fd.ready_mut(Interest::PRIORITY);
                    let ready = match liveness {
                        Some(period) => tokio::time::timeout(period, ready).await.ok(),
                        None => Some(ready.await),
                    };
                    match ready {
                        Some(Ok(mut guard)) => {
                            // Clear before reading: a notify that comes after the read sets
                            // readiness again (tokio keeps a newer event's tick).
                            guard.clear_ready();
                            tracker.observe(guard.get_inner(), true)?
                        }
                        Some(Err(err)) => return Err(poll_error(fd.get_ref(), err)),
                        // The next turn looks with `poll`.
                        None => Seen::Nothing,
                    }
                }
                Source::Inotify(inotify, file) => {
                    let ready = inotify.readable();
                    // After a forgiven read, read again when the writer's grace is over.
                    let ready = if tracker.forgiven {
                        tokio::time::timeout(file.interval(), ready).await.ok()
                    } else {
                        Some(ready.await)
                    };
                    match ready {
                        Some(Ok(mut guard)) => {
                            // Clear before draining: an event queued after the drain makes
                            // the descriptor ready again.
                            guard.clear_ready();
                            let evented = file.is_pending()?;
                            if evented || tracker.forgiven {
                                tracker.observe(file, evented)?
                            } else {
                                Seen::Nothing
                            }
                        }
                        Some(Err(err)) => return Err(poll_error(file, err)),
                        None => tracker.observe(file, false)?,
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

impl<T: Decode + Send + 'static> AsyncWatcher<T> {
    /// The changes as a [`Stream`], which ends after the first error (a removed file would
    /// otherwise report itself forever).
    ///
    /// Each item is one call of [`AsyncWatcher::next`] on a watcher the stream owns; the stream
    /// allocates one future per change.
    pub fn into_stream(self) -> Changes<T> {
        Changes {
            pending: Some(next_owned(self)),
        }
    }
}

fn poll_error(file: &KernfsFile, source: io::Error) -> Error {
    Error::Io {
        path: file.path().to_path_buf(),
        op: Op::Poll,
        source,
    }
}

type NextChange<T> = Pin<Box<dyn Future<Output = (AsyncWatcher<T>, Result<Change<T>>)> + Send>>;

fn next_owned<T: Decode + Send + 'static>(mut watcher: AsyncWatcher<T>) -> NextChange<T> {
    Box::pin(async move {
        let next = watcher.next().await;
        (watcher, next)
    })
}

/// The [`Stream`] of an [`AsyncWatcher`]'s changes (see [`AsyncWatcher::into_stream`]).
#[must_use = "streams do nothing unless polled"]
pub struct Changes<T: Decode = State> {
    /// The next change being awaited; `None` once the stream ended.
    pending: Option<NextChange<T>>,
}

impl<T: Decode> std::fmt::Debug for Changes<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("ended", &self.pending.is_none())
            .finish()
    }
}

impl<T: Decode + Send + 'static> Stream for Changes<T> {
    type Item = Result<Change<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let (watcher, next) = std::task::ready!(pending.as_mut().poll(cx));
        self.pending = next.is_ok().then(|| next_owned(watcher));
        Poll::Ready(Some(next))
    }
}
