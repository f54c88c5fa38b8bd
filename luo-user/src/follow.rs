//! Following a file that may go away and come back, as `tail -F` does: the state attribute
//! disappears when the module is unloaded and comes back when it is loaded again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use luo_state::State;

use crate::error::{Error, Result};
use crate::kernfs::{DEFAULT_INTERVAL, KernfsFile};
use crate::watch::{Change, Decode, Watcher};

/// How often a follower looks for an absent file, unless told otherwise.
///
/// sysfs sends no inotify events when a module creates its files, so an absent attribute can
/// only be looked for; once a second is what `tail -F` does, and costs one `open` a second.
pub const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// What a [`Follower`] saw.
#[derive(Debug)]
#[non_exhaustive]
pub enum Followed<T: Decode = State> {
    /// The file was opened and read: at the start, or again after it had gone.
    Attached {
        /// The value read.
        current: T,
        /// The change from the value last seen before the file went away, if it differs.
        change: Option<Change<T>>,
    },
    /// The value changed while attached.
    Changed(Change<T>),
    /// The file went away (or was not there at the start); the follower waits for it to come
    /// back. The error says why.
    Detached(Error),
}

/// A watcher that survives the removal of its file: when the file goes (the module unloaded),
/// it reports [`Followed::Detached`], looks for the file every [`FOLLOW_RETRY`] without
/// spinning, and re-attaches when it is back ([`Followed::Attached`]).
///
/// Sequence numbers go on across re-attachments, so every reported [`Change`] has the next
/// number, and a value that differs after a re-attachment is reported as a change from the
/// last value seen.
#[derive(Debug)]
pub struct Follower<T: Decode = State> {
    path: PathBuf,
    interval: Duration,
    retry: Duration,
    watcher: Option<Watcher<T>>,
    /// The last value seen, attached or not.
    last: Option<T>,
    seq: u64,
    /// Whether the absence was already reported (once per absence).
    told_absent: bool,
}

impl<T: Decode> Follower<T> {
    /// Follows `path`; a plain file without inotify is re-read every [`DEFAULT_INTERVAL`].
    /// Nothing is opened until the first [`Follower::next_until`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Follower {
            path: path.into(),
            interval: DEFAULT_INTERVAL,
            retry: FOLLOW_RETRY,
            watcher: None,
            last: None,
            seq: 0,
            told_absent: false,
        }
    }

    /// Re-reads a plain file without inotify every `interval`.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Looks for an absent file every `retry` (at least 1 ms, so it never spins).
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry.max(Duration::from_millis(1));
        self
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last value seen, if the file was ever read.
    pub fn current(&self) -> Option<T> {
        self.last
    }

    /// The watcher, while attached.
    pub fn watcher(&self) -> Option<&Watcher<T>> {
        self.watcher.as_ref()
    }

    /// Whether the follower is attached to its file right now.
    pub fn is_attached(&self) -> bool {
        self.watcher.is_some()
    }

    /// Waits for the next thing to report until `deadline` (`None`: no deadline); `Ok(None)`
    /// once it has passed. Errors other than the file's absence or removal end the following.
    pub fn next_until(&mut self, deadline: Option<Instant>) -> Result<Option<Followed<T>>> {
        loop {
            let Some(watcher) = self.watcher.as_mut() else {
                match self.attach() {
                    Ok(attached) => return Ok(Some(attached)),
                    Err(err) if err.is_gone() => {
                        if !self.told_absent {
                            self.told_absent = true;
                            return Ok(Some(Followed::Detached(err)));
                        }
                    }
                    Err(err) => return Err(err),
                }
                if !sleep_until(self.retry, deadline) {
                    return Ok(None);
                }
                continue;
            };
            match watcher.next_change_until(deadline) {
                Ok(Some(change)) => return Ok(Some(Followed::Changed(self.renumber(change)))),
                Ok(None) => return Ok(None),
                Err(err) if err.is_gone() => {
                    self.watcher = None;
                    self.told_absent = true;
                    return Ok(Some(Followed::Detached(err)));
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn attach(&mut self) -> Result<Followed<T>> {
        let watcher = Watcher::new(KernfsFile::open_with_interval(&self.path, self.interval)?)?;
        let current = watcher.current();
        let change = match self.last {
            Some(prev) if prev != current => {
                self.seq += 1;
                Some(Change {
                    state: current,
                    prev,
                    seq: self.seq,
                    at: Instant::now(),
                    time: SystemTime::now(),
                })
            }
            _ => None,
        };
        self.last = Some(current);
        self.watcher = Some(watcher);
        self.told_absent = false;
        Ok(Followed::Attached { current, change })
    }

    fn renumber(&mut self, mut change: Change<T>) -> Change<T> {
        self.seq += 1;
        change.seq = self.seq;
        self.last = Some(change.state);
        change
    }
}

/// Sleeps `nap`, or until `deadline` if that comes first; `false` if the deadline had passed.
fn sleep_until(nap: Duration, deadline: Option<Instant>) -> bool {
    let nap = match deadline {
        None => nap,
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => left.min(nap),
            _ => return false,
        },
    };
    std::thread::sleep(nap);
    true
}

#[cfg(test)]
mod tests {
    use std::fs;

    use tempfile::TempDir;

    use super::*;

    fn next(follower: &mut Follower) -> Followed {
        follower
            .next_until(Some(Instant::now() + Duration::from_secs(20)))
            .unwrap()
            .expect("something within 20 s")
    }

    #[test]
    fn an_absent_file_is_reported_once_then_attached_when_it_appears() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("state");
        let mut follower = Follower::<State>::new(&path).with_retry(Duration::from_millis(10));
        assert!(matches!(
            next(&mut follower),
            Followed::Detached(Error::NotFound { .. })
        ));
        fs::write(&path, "normal\n").unwrap();
        match next(&mut follower) {
            Followed::Attached { current, change } => {
                assert_eq!(current, State::Normal);
                assert_eq!(change, None);
            }
            other => panic!("expected an attachment, got {other:?}"),
        }
    }

    #[test]
    fn a_removed_file_detaches_and_a_different_value_on_return_is_a_change() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("state");
        fs::write(&path, "normal\n").unwrap();
        let mut follower = Follower::<State>::new(&path).with_retry(Duration::from_millis(10));
        assert!(matches!(next(&mut follower), Followed::Attached { .. }));
        fs::write(&path, "prepared\n").unwrap();
        let Followed::Changed(first) = next(&mut follower) else {
            panic!("expected a change");
        };
        assert_eq!(
            (first.prev, first.state, first.seq),
            (State::Normal, State::Prepared, 1)
        );
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            next(&mut follower),
            Followed::Detached(Error::Gone { .. })
        ));
        assert!(!follower.is_attached());
        fs::write(&path, "updated\n").unwrap();
        let Followed::Attached {
            current,
            change: Some(change),
        } = next(&mut follower)
        else {
            panic!("expected an attachment with a change");
        };
        assert_eq!(current, State::Updated);
        assert_eq!(
            (change.prev, change.state, change.seq),
            (State::Prepared, State::Updated, 2)
        );
    }

    #[test]
    fn waiting_for_an_absent_file_ends_at_the_deadline() {
        let dir = TempDir::new().unwrap();
        let mut follower =
            Follower::<State>::new(dir.path().join("absent")).with_retry(Duration::from_millis(10));
        assert!(matches!(next(&mut follower), Followed::Detached(_)));
        let started = Instant::now();
        let none = follower
            .next_until(Some(Instant::now() + Duration::from_millis(100)))
            .unwrap();
        assert!(none.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
