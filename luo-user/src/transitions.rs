//! The transition counter, `/sys/kernel/liveupdate/transitions`: how many times the state
//! changed since the orchestrator started in this boot; and [`Snapshot`], the counter and the
//! state read together in the order that pairs them exactly.
//!
//! Changes coalesce between two reads of `state` (`prepared`, `normal`, `prepared` can show as
//! no change at all), but every change raises the counter, so two snapshots tell how many
//! changes happened in between ([`Snapshot::changes_since`]) and how many of those a watcher
//! that saw only the two snapshots missed ([`Snapshot::missed_since`]).
//!
//! A module older than the counter has no such file: reading it is then
//! [`Error::NoTransitions`], so a caller can go on with the state alone.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use luo_state::State;
use luo_sysfs_abi::{
    Content, ParseError, SHOW_MAX_LEN, TRANSITIONS_SHOW_MAX_LEN, parse_state, parse_transitions,
};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{ContentError, Error, Op, Result};
use crate::watch::Decode;

/// The counter's file name in the state's directory.
const FILE_NAME: &str = "transitions";

/// How many times [`Snapshot::read_from`] reads the three values again when a change came in
/// between, before it settles for a count that may be low (see there).
pub const SNAPSHOT_ATTEMPTS: u32 = 64;

/// Reads the transition counter at its standard path
/// ([`luo_sysfs_abi::path::TRANSITIONS_PATH`]).
///
/// [`Error::NoTransitions`] when the module is loaded but older than the counter, and
/// [`Error::NotFound`] when it is not loaded.
pub fn transitions() -> Result<u64> {
    read_transitions_beside(
        luo_sysfs_abi::path::TRANSITIONS_PATH,
        luo_sysfs_abi::path::STATE_PATH,
    )
}

/// Reads the transition counter at `path` (another mount point, or a file in a test): one
/// read at offset 0, parsed strictly. A missing file is [`Error::NotFound`].
pub fn read_transitions(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    read_count(path, &open(path)?)
}

/// The counter's path beside a state attribute at `state`: the file `transitions` in the
/// same directory (`/sys/kernel/liveupdate/transitions` for the standard state path).
pub fn transitions_path_beside(state: impl AsRef<Path>) -> PathBuf {
    state.as_ref().with_file_name(FILE_NAME)
}

/// The transition counter's value as a watched content: a [`crate::Watcher`] or
/// [`crate::Follower`] of the counter file wakes on every change of state, even on changes
/// that leave the state where it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransitionCount(pub u64);

impl Decode for TransitionCount {
    /// luo's module notifies `transitions` before it removes it, as it does `state`.
    const LIVENESS: Option<std::time::Duration> = None;

    /// The strict parser of the `transitions` attribute
    /// ([`luo_sysfs_abi::parse_transitions`]).
    fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        parse_transitions(bytes)
            .map(TransitionCount)
            .map_err(ContentError::Abi)
    }
}

/// The transition count and the state of one moment.
///
/// Read with [`Snapshot::read_default`] or [`Snapshot::read_from`], it is exact: `state` is
/// the state that the `transitions`-th change made (or the boot state, for 0). The kernel keeps
/// both in one word and changes them with one store; the reader reads `transitions`, then
/// `state`, then `transitions` again, and keeps the pair when both counts agree (the module's
/// `StateCell` documents why that pairs them exactly). A count read before the state is never
/// paired with an older state, which is why the counter comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The changes of state since the orchestrator started in this boot.
    pub transitions: u64,
    /// The state those changes led to.
    pub state: State,
}

impl Snapshot {
    /// Reads the snapshot at the standard paths ([`luo_sysfs_abi::path::TRANSITIONS_PATH`] and
    /// [`luo_sysfs_abi::path::STATE_PATH`]).
    ///
    /// [`Error::NoTransitions`] when the module is loaded but older than the counter (read the
    /// state alone then), [`Error::NotFound`] when it is not loaded.
    pub fn read_default() -> Result<Snapshot> {
        Self::read_from(
            luo_sysfs_abi::path::TRANSITIONS_PATH,
            luo_sysfs_abi::path::STATE_PATH,
        )
    }

    /// Reads the snapshot with the counter beside the state attribute at `state` (see
    /// [`transitions_path_beside`]).
    pub fn read_beside(state: impl AsRef<Path>) -> Result<Snapshot> {
        let state = state.as_ref();
        Self::read_from(transitions_path_beside(state), state)
    }

    /// Reads the snapshot from the counter at `transitions` and the state at `state`:
    /// the counter, the state, the counter again, until both counts agree.
    ///
    /// When the counter is missing but the state is there, [`Error::NoTransitions`]; when both
    /// are missing, the state's [`Error::NotFound`]. If a change comes between the reads
    /// [`SNAPSHOT_ATTEMPTS`] times in a row, the last attempt's first count and state are
    /// returned: the state is then that count's or a later one's, never an older one.
    pub fn read_from(transitions: impl AsRef<Path>, state: impl AsRef<Path>) -> Result<Snapshot> {
        let (counter_path, state_path) = (transitions.as_ref(), state.as_ref());
        let counter = match open(counter_path) {
            Ok(fd) => fd,
            Err(Error::NotFound { .. }) => {
                // Tell an older module (the state alone) from no module at all.
                open(state_path)?;
                return Err(Error::NoTransitions {
                    path: counter_path.to_path_buf(),
                });
            }
            Err(err) => return Err(err),
        };
        let state_fd = open(state_path)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let first = read_count(counter_path, &counter)?;
            let state = read_state(state_path, &state_fd)?;
            let again = read_count(counter_path, &counter)?;
            if first == again || attempt >= SNAPSHOT_ATTEMPTS {
                return Ok(Snapshot {
                    transitions: first,
                    state,
                });
            }
        }
    }

    /// How many changes of state came between `earlier` and this snapshot; `None` when the
    /// count went back (the module was loaded again, or another boot), so it cannot tell.
    pub fn changes_since(&self, earlier: &Snapshot) -> Option<u64> {
        self.transitions.checked_sub(earlier.transitions)
    }

    /// How many of the changes between `earlier` and this snapshot a watcher that saw only
    /// these two missed: all of them when the state is the same (it went away and came back),
    /// all but the last one when it differs. `None` when the count went back
    /// ([`Snapshot::changes_since`]).
    ///
    /// `Some(0)` means the watcher saw every change: none, or exactly the one from
    /// `earlier.state` to `self.state`.
    pub fn missed_since(&self, earlier: &Snapshot) -> Option<u64> {
        let changes = self.changes_since(earlier)?;
        let seen = u64::from(self.state != earlier.state);
        // A state that differs after no counted change cannot come from one exact read: it is
        // one change seen, none missed.
        Some(changes.saturating_sub(seen))
    }
}

fn open(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|errno| Error::from_errno(path.to_path_buf(), Op::Open, errno))
}

/// One `pread` at offset 0 into `buf`; the bytes read.
fn pread<'a>(path: &Path, fd: &OwnedFd, buf: &'a mut [u8]) -> Result<&'a [u8]> {
    let len = loop {
        match rustix::io::pread(fd, &mut *buf, 0) {
            Err(Errno::INTR) => continue,
            other => {
                break other
                    .map_err(|errno| Error::from_errno(path.to_path_buf(), Op::Read, errno))?;
            }
        }
    };
    Ok(buf.get(..len).unwrap_or_default())
}

fn content_error(path: &Path, err: ParseError) -> Error {
    Error::Content {
        path: path.to_path_buf(),
        source: ContentError::Abi(err),
    }
}

fn read_count(path: &Path, fd: &OwnedFd) -> Result<u64> {
    // One byte more than `show` writes, so a longer content is seen as such.
    let mut buf = [0u8; TRANSITIONS_SHOW_MAX_LEN + 1];
    parse_transitions(pread(path, fd, &mut buf)?).map_err(|err| content_error(path, err))
}

fn read_state(path: &Path, fd: &OwnedFd) -> Result<State> {
    let mut buf = [0u8; if SHOW_MAX_LEN > Content::CAPACITY {
        SHOW_MAX_LEN + 1
    } else {
        Content::CAPACITY + 1
    }];
    parse_state(pread(path, fd, &mut buf)?).map_err(|err| content_error(path, err))
}

/// [`read_transitions`], but a missing counter beside a present state is
/// [`Error::NoTransitions`].
fn read_transitions_beside(transitions: &str, state: &str) -> Result<u64> {
    match read_transitions(transitions) {
        Err(Error::NotFound { .. }) if Path::new(state).exists() => Err(Error::NoTransitions {
            path: PathBuf::from(transitions),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use proptest::prelude::*;
    use tempfile::TempDir;

    use super::*;

    /// A directory holding `state` and, if given, `transitions`.
    fn dir(state: &str, transitions: Option<&str>) -> (TempDir, PathBuf) {
        let dir = TempDir::new().unwrap();
        let state_path = dir.path().join("state");
        fs::write(&state_path, state).unwrap();
        if let Some(transitions) = transitions {
            fs::write(dir.path().join("transitions"), transitions).unwrap();
        }
        (dir, state_path)
    }

    #[test]
    fn reads_what_show_writes() {
        let (_dir, state) = dir("prepared\n", Some("3\n"));
        assert_eq!(
            read_transitions(transitions_path_beside(&state)).unwrap(),
            3
        );
        assert_eq!(
            Snapshot::read_beside(&state).unwrap(),
            Snapshot {
                transitions: 3,
                state: State::Prepared
            }
        );
    }

    #[test]
    fn the_counter_lives_beside_the_state() {
        assert_eq!(
            transitions_path_beside(luo_sysfs_abi::path::STATE_PATH),
            Path::new(luo_sysfs_abi::path::TRANSITIONS_PATH)
        );
    }

    #[test]
    fn a_module_older_than_the_counter_is_its_own_error() {
        let (_dir, state) = dir("normal\n", None);
        let err = Snapshot::read_beside(&state).unwrap_err();
        assert!(matches!(err, Error::NoTransitions { .. }), "{err:?}");
        assert!(err.to_string().contains("older"), "{err}");
        assert!(!err.is_gone());
    }

    #[test]
    fn no_state_and_no_counter_is_not_found() {
        let dir = TempDir::new().unwrap();
        let err = Snapshot::read_beside(dir.path().join("state")).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn garbage_in_the_counter_is_a_content_error_naming_it() {
        let (_dir, state) = dir("normal\n", Some("three\n"));
        let err = Snapshot::read_beside(&state).unwrap_err();
        assert!(matches!(err, Error::Content { .. }), "{err:?}");
        assert!(err.to_string().contains("transition count"), "{err}");
        let long = format!("{}\n", "1".repeat(TRANSITIONS_SHOW_MAX_LEN + 5));
        let (_dir, state) = dir("normal\n", Some(&long));
        assert!(read_transitions(transitions_path_beside(&state)).is_err());
    }

    #[test]
    fn a_watched_count_decodes_strictly() {
        assert_eq!(TransitionCount::decode(b"7\n"), Ok(TransitionCount(7)));
        assert!(TransitionCount::decode(b"07\n").is_err());
    }

    fn snap(transitions: u64, state: State) -> Snapshot {
        Snapshot { transitions, state }
    }

    #[test]
    fn a_state_gone_and_back_is_two_missed_changes() {
        let earlier = snap(1, State::Prepared);
        let later = snap(3, State::Prepared);
        assert_eq!(later.changes_since(&earlier), Some(2));
        assert_eq!(later.missed_since(&earlier), Some(2));
    }

    #[test]
    fn one_change_seen_is_none_missed() {
        let earlier = snap(0, State::Normal);
        assert_eq!(snap(1, State::Prepared).missed_since(&earlier), Some(0));
        assert_eq!(snap(0, State::Normal).missed_since(&earlier), Some(0));
        assert_eq!(snap(3, State::Frozen).missed_since(&earlier), Some(2));
    }

    #[test]
    fn a_count_that_went_back_tells_nothing() {
        let earlier = snap(5, State::Normal);
        assert_eq!(snap(0, State::Normal).changes_since(&earlier), None);
        assert_eq!(snap(1, State::Prepared).missed_since(&earlier), None);
    }

    /// The v3 moves a cold boot can make.
    fn step(state: State, pick: u8) -> State {
        match (state, pick % 2) {
            (State::Normal, _) => State::Prepared,
            (State::Prepared, 0) => State::Frozen,
            _ => State::Normal,
        }
    }

    proptest! {
        /// A watcher that takes exact snapshots at arbitrary moments accounts for every change:
        /// what it saw plus what it missed is the count at its last read.
        #[test]
        fn seen_plus_missed_is_every_change(
            picks in proptest::collection::vec(any::<u8>(), 0..64),
            reads in proptest::collection::vec(any::<bool>(), 0..64),
        ) {
            let mut history = vec![State::Normal];
            for pick in &picks {
                history.push(step(*history.last().unwrap(), *pick));
            }
            let mut last = snap(0, State::Normal);
            let (mut seen, mut missed) = (0, 0);
            for (count, state) in history.iter().enumerate().skip(1) {
                if !reads.get(count).copied().unwrap_or(true) {
                    continue;
                }
                let now = snap(count as u64, *state);
                seen += u64::from(now.state != last.state);
                missed += now.missed_since(&last).unwrap();
                last = now;
            }
            prop_assert_eq!(seen + missed, last.transitions);
            if reads.iter().take(history.len()).all(|read| *read) {
                prop_assert_eq!(missed, 0);
            }
        }
    }
}
