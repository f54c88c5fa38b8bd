//! The blocking watcher: reports each observed change of a kernfs file's decoded content.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use luo_state::{State, StateSet};
use luo_sysfs_abi::parse_state;

use crate::error::{ContentError, Error, Result};
use crate::kernfs::{KernfsFile, Wakeup};

/// What a watched file's bytes decode to: a small value compared to find real changes.
pub trait Decode: Copy + PartialEq {
    /// Decodes the whole content of one read at offset 0.
    fn decode(bytes: &[u8]) -> Result<Self, ContentError>;
}

impl Decode for State {
    /// The strict parser of the `state` attribute ([`luo_sysfs_abi::parse_state`]).
    fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        parse_state(bytes).map_err(ContentError::State)
    }
}

/// One observed change: the content decoded to a value different from the previous one.
///
/// Changes coalesce: several transitions between two reads are one change, from the value
/// seen at the earlier read to the value seen at the later one (which may even equal the
/// earlier one, and then nothing is reported). A watcher sees observed states, not every
/// transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Whether the last read did not decode and was forgiven (plain files only).
    forgiven: bool,
}

/// What one read showed.
pub(crate) enum Seen<T> {
    /// A different value.
    Change(Change<T>),
    /// The same value, or a bad read of a plain file forgiven once.
    Nothing,
}

impl<T: Decode> Tracker<T> {
    /// Reads `file` once (which arms a kernfs notification) and keeps the value.
    pub(crate) fn first_read(file: &KernfsFile) -> Result<Self> {
        let mut buf = vec![0; READ_CAPACITY].into_boxed_slice();
        let current = read_value(file, &mut buf)?;
        Ok(Tracker {
            buf,
            current,
            seq: 0,
            forgiven: false,
        })
    }

    /// Reads `file` again and reports whether the value changed.
    ///
    /// A plain file (interval fallback) may be caught half-written by a writer that truncates
    /// and then writes; one read that does not decode is forgiven and retried at the next
    /// interval, two in a row are an error. kernfs reads are atomic and never forgiven.
    pub(crate) fn observe(&mut self, file: &KernfsFile) -> Result<Seen<T>> {
        let value = match read_value(file, &mut self.buf) {
            Ok(value) => value,
            Err(Error::Content { .. })
                if !self.forgiven && matches!(file.wakeup(), Wakeup::Interval(_)) =>
            {
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

/// Follows a file the kernfs way: read, sleep in `poll` for `POLLPRI`, read again at offset 0,
/// report the change if the value differs.
///
/// The first read happens in the constructor, so [`Watcher::current`] is known at once and the
/// kernfs notification is armed. Waiting allocates nothing. When the file is removed (the
/// module unloaded) the watcher ends with [`Error::Gone`] within
/// [`LIVENESS_PERIOD`](crate::LIVENESS_PERIOD), and does not spin.
///
/// A file outside sysfs and cgroup file systems (a regular file in a test or a container) has
/// no notification: the watcher re-reads it at an interval instead ([`Wakeup::Interval`]).
/// Such a file should be rewritten in place, not replaced by a rename (the watcher keeps the
/// descriptor of the file it opened); one half-written read is forgiven.
#[derive(Debug)]
pub struct Watcher<T: Decode = State> {
    file: KernfsFile,
    tracker: Tracker<T>,
}

impl Watcher<State> {
    /// Watches the orchestrator's state attribute at its standard path, sleeping in `poll`
    /// until a notification (see [`crate::StateFile`]).
    pub fn open_default() -> Result<Self> {
        crate::StateFile::open_default()?.watch()
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
    pub fn new(file: KernfsFile) -> Result<Self> {
        let tracker = match Tracker::first_read(&file) {
            // A plain file caught half-written: one retry, one interval later.
            Err(Error::Content { .. }) if matches!(file.wakeup(), Wakeup::Interval(_)) => {
                file.wait(None)?;
                Tracker::first_read(&file)?
            }
            other => other?,
        };
        Ok(Watcher { file, tracker })
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

    /// Waits for the next change, at most `timeout` (`None`: without end); `Ok(None)` when the
    /// time ran out. Wakes that show the same value are not reported.
    pub fn next_change(&mut self, timeout: Option<Duration>) -> Result<Option<Change<T>>> {
        self.next_change_until(deadline(timeout))
    }

    /// Waits for the next change until `deadline` on the monotonic clock (`None`: no
    /// deadline); `Ok(None)` once it has passed.
    pub fn next_change_until(&mut self, deadline: Option<Instant>) -> Result<Option<Change<T>>> {
        loop {
            if !self.file.wait(deadline)? {
                return Ok(None);
            }
            if let Seen::Change(change) = self.tracker.observe(&self.file)? {
                return Ok(Some(change));
            }
        }
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
