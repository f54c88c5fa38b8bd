//! The blocking watcher: reports each observed change of a watched file's decoded content.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use luo_state::{State, StateSet};
use luo_sysfs_abi::parse_state;

use crate::error::{ContentError, Error, Result};
use crate::kernfs::{KernfsFile, LIVENESS_PERIOD, Wakeup};

/// What a watched file's bytes decode to: a small value compared to find real changes.
pub trait Decode: Copy + PartialEq {
    /// How long a watcher of a kernfs file holding this content sleeps at most before it looks
    /// whether the file was removed; `None` sleeps until a notification.
    ///
    /// Removing a kernfs file wakes no poller, so the default is [`LIVENESS_PERIOD`]. A file
    /// whose owner notifies before removing it (luo's state attribute) can say `None`, and an
    /// idle watcher then makes no system call at all. This is the one place that decides it:
    /// every constructor of [`Watcher`] and [`AsyncWatcher`](crate::AsyncWatcher) uses it.
    const LIVENESS: Option<Duration> = Some(LIVENESS_PERIOD);

    /// Decodes the whole content of one read at offset 0.
    fn decode(bytes: &[u8]) -> Result<Self, ContentError>;
}

impl Decode for State {
    /// luo's module retires its orchestrator and notifies before it removes the attribute, so
    /// a sleeping watcher is woken by the removal.
    const LIVENESS: Option<Duration> = None;

    /// The strict parser of the `state` attribute ([`luo_sysfs_abi::parse_state`]).
    fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        parse_state(bytes).map_err(ContentError::Abi)
    }
}

/// One observed change: the content decoded to a value different from the previous one.
///
/// Changes coalesce: several transitions between two reads are one change, from the value
/// seen at the earlier read to the value seen at the later one (which may even equal the
/// earlier one, and then nothing is reported). A watcher sees observed states, not every
/// transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change<T = State> {
    /// The value now.
    pub state: T,
    /// The value observed before.
    pub prev: T,
    /// The number of this observation: the first read is 0, each reported change adds one.
    pub seq: u64,
    /// When the new value was read, on the monotonic clock (for intervals).
    pub at: Instant,
    /// When the new value was read, on the wall clock (for logs).
    pub time: SystemTime,
}

/// Size of the read buffer: a sysfs `show` writes at most one page.
pub(crate) const READ_CAPACITY: usize = 4096;

/// The watch state shared by the blocking and the async watcher: the buffer, the last value
/// and the sequence number.
#[derive(Debug)]
pub(crate) struct Tracker<T> {
    buf: Box<[u8]>,
    pub(crate) current: T,
    pub(crate) seq: u64,
    /// Whether the last read of a plain file did not decode and was forgiven: the file may
    /// be half-written, so it is read again once its writer is done.
    pub(crate) forgiven: bool,
}

/// What one read showed.
pub(crate) enum Seen<T> {
    /// A different value.
    Change(Change<T>),
    /// The same value, or a bad read of a plain file forgiven.
    Nothing,
}

impl<T: Decode> Tracker<T> {
    /// Reads `file` once (which arms a kernfs notification) and keeps the value.
    ///
    /// A plain file caught half-written gets one more read, after its writer's next event or
    /// one interval.
    pub(crate) fn first_read(file: &KernfsFile) -> Result<Self> {
        let mut buf = vec![0; READ_CAPACITY].into_boxed_slice();
        let current = match read_value(file, &mut buf) {
            Err(Error::Content { .. }) if file.wakeup() != Wakeup::Priority => {
                file.wait(Some(Instant::now() + file.interval()))?;
                read_value(file, &mut buf)?
            }
            other => other?,
        };
        Ok(Tracker {
            buf,
            current,
            seq: 0,
            forgiven: false,
        })
    }

    /// Reads `file` again and reports whether the value changed; `evented` says whether a
    /// notification about the file came since the last read.
    ///
    /// A plain file may be caught half-written by a writer that truncates and then writes. A
    /// read that does not decode is forgiven, and read again at the writer's next event or
    /// one interval later; it is an error only when it still does not decode with no event
    /// in between (with inotify), or twice in a row (without). kernfs reads are atomic and
    /// never forgiven.
    pub(crate) fn observe(&mut self, file: &KernfsFile, evented: bool) -> Result<Seen<T>> {
        let value = match read_value(file, &mut self.buf) {
            Ok(value) => value,
            Err(Error::Content { .. }) if self.may_forgive(file.wakeup(), evented) => {
                self.forgiven = true;
                return Ok(Seen::Nothing);
            }
            Err(err) => return Err(err),
        };
        self.forgiven = false;
        if value == self.current {
            return Ok(Seen::Nothing);
        }
        let prev = self.current;
        self.current = value;
        self.seq += 1;
        Ok(Seen::Change(Change {
            state: value,
            prev,
            seq: self.seq,
            at: Instant::now(),
            time: SystemTime::now(),
        }))
    }

    fn may_forgive(&self, wakeup: Wakeup, evented: bool) -> bool {
        match wakeup {
            Wakeup::Priority => false,
            Wakeup::Inotify => !self.forgiven || evented,
            _ => !self.forgiven,
        }
    }
}

pub(crate) fn read_value<T: Decode>(file: &KernfsFile, buf: &mut [u8]) -> Result<T> {
    let len = file.read_into(buf)?;
    let bytes = buf.get(..len).unwrap_or_default();
    T::decode(bytes).map_err(|source| Error::Content {
        path: file.path().to_path_buf(),
        source,
    })
}

/// The deadline `timeout` from now; `None` (no deadline) for no timeout or one too far away.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The earlier of two optional deadlines (`None` is never).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Follows a file: read, sleep until it may have changed, read again at offset 0, report the
/// change if the value differs.
///
/// The first read happens in the constructor, so [`Watcher::current`] is known at once and a
/// kernfs notification is armed. Waiting allocates nothing. A kernfs file is watched with
/// `poll` for `POLLPRI`; a plain file (in a test or a container) through inotify on its
/// directory, so a rewrite in place, a replacement by rename and a removal are all seen.
///
/// When the file is removed (the module unloaded) the watcher ends with [`Error::Gone`]: at
/// once for luo's state attribute, whose module notifies first, and within
/// [`Decode::LIVENESS`] for other kernfs files. It never spins.
///
/// The watcher is also an [`Iterator`] of changes, which ends after the first error.
///
/// To drive it from your own event loop (epoll, sd-event), wait for the descriptor of
/// [`Watcher::file`] (`POLLPRI` for [`Wakeup::Priority`]), then call
/// [`Watcher::try_next_change`].
#[derive(Debug)]
pub struct Watcher<T: Decode = State> {
    file: KernfsFile,
    tracker: Tracker<T>,
    /// The iterator yielded an error, so it has ended.
    ended: bool,
}

impl Watcher<State> {
    /// Watches the orchestrator's state attribute at its standard path (see
    /// [`crate::StateFile`]).
    pub fn open_default() -> Result<Self> {
        Self::open(luo_sysfs_abi::path::STATE_PATH)
    }

    /// Waits until the state is in `set` and returns it: at once if it already is, `Ok(None)`
    /// once `timeout` has passed without that.
    ///
    /// Because changes coalesce, a state held only briefly between two reads can be missed.
    pub fn wait_for(&mut self, set: StateSet, timeout: Option<Duration>) -> Result<Option<State>> {
        self.wait_until(|state| set.has(*state), timeout)
    }
}

impl<T: Decode> Watcher<T> {
    /// Opens `path` (see [`KernfsFile::open`]) and reads it once.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::new(KernfsFile::open(path)?)
    }

    /// Watches an open file, reading it once now.
    pub fn new(mut file: KernfsFile) -> Result<Self> {
        file.set_liveness(T::LIVENESS);
        let tracker = Tracker::first_read(&file)?;
        Ok(Watcher {
            file,
            tracker,
            ended: false,
        })
    }

    /// The value at the last read.
    pub fn current(&self) -> T {
        self.tracker.current
    }

    /// The number of changes reported so far (the `seq` of the last [`Change`]).
    pub fn seq(&self) -> u64 {
        self.tracker.seq
    }

    /// The watched file.
    pub fn file(&self) -> &KernfsFile {
        &self.file
    }

    /// How long one sleep lasts at most before the watcher looks whether a kernfs file was
    /// removed: [`Decode::LIVENESS`] for a kernfs file, `None` for a plain file (whose removal
    /// inotify reports, or the next interval's read sees).
    pub fn liveness(&self) -> Option<Duration> {
        self.file.liveness()
    }

    /// Waits for the next change, at most `timeout` (`None`: without end); `Ok(None)` when the
    /// time ran out. Wakes that show the same value are not reported.
    ///
    /// A zero timeout looks once without sleeping, like [`Watcher::try_next_change`].
    pub fn next_change(&mut self, timeout: Option<Duration>) -> Result<Option<Change<T>>> {
        self.next_change_until(deadline(timeout))
    }

    /// Reports a change that is already pending, without sleeping: one `poll` with a zero
    /// timeout (or a look at the inotify queue) and, if it says so, one read.
    pub fn try_next_change(&mut self) -> Result<Option<Change<T>>> {
        self.next_change_until(Some(Instant::now()))
    }

    /// Waits for the next change until `deadline` on the monotonic clock (`None`: no
    /// deadline); `Ok(None)` once it has passed. A deadline already passed still looks once.
    pub fn next_change_until(&mut self, deadline: Option<Instant>) -> Result<Option<Change<T>>> {
        loop {
            let slice = earliest(deadline, self.next_look());
            let woke = self.file.wait(slice)?;
            // After a forgiven read, read again when the writer's grace is over, event or not.
            if woke || self.tracker.forgiven {
                if let Seen::Change(change) = self.tracker.observe(&self.file, woke)? {
                    return Ok(Some(change));
                }
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
        }
    }

    /// When to look again although nothing woke the watcher: a kernfs file's liveness period
    /// (see [`Decode::LIVENESS`]), or the grace of a plain file caught half-written.
    fn next_look(&self) -> Option<Instant> {
        let period = match self.file.wakeup() {
            Wakeup::Priority => self.liveness(),
            _ if self.tracker.forgiven => Some(self.file.interval()),
            _ => None,
        };
        deadline(period)
    }

    /// Waits until `pred` holds for the value and returns that value: at once if it already
    /// holds, `Ok(None)` once `timeout` has passed without that.
    pub fn wait_until(
        &mut self,
        mut pred: impl FnMut(&T) -> bool,
        timeout: Option<Duration>,
    ) -> Result<Option<T>> {
        let deadline = deadline(timeout);
        loop {
            if pred(&self.tracker.current) {
                return Ok(Some(self.tracker.current));
            }
            if self.next_change_until(deadline)?.is_none() {
                return Ok(None);
            }
        }
    }
}

/// Each change as it comes, blocking; the first error ends the iteration after it is yielded
/// (a removed file would otherwise report itself forever).
impl<T: Decode> Iterator for Watcher<T> {
    type Item = Result<Change<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let next = self.next_change_until(None).transpose();
        self.ended = matches!(next, Some(Err(_)) | None);
        next
    }
}
