//! A state file outside sysfs on a local file system (a file in a temporary directory, as in a
//! container or a test) is followed through inotify on its directory: rewrites in place,
//! replacements by rename and removals are all seen, without polling.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::thread_cpu_time;
use luo_user::{Error, State, StateFile, Wakeup, Watcher};
use tempfile::TempDir;

const SHOULD_WAKE: Duration = Duration::from_secs(20);
const SHOULD_NOT_WAKE: Duration = Duration::from_millis(300);

fn state_file(dir: &TempDir, state: State) -> PathBuf {
    let path = dir.path().join("state");
    fs::write(&path, format!("{state}\n")).unwrap();
    path
}

fn watcher(path: &Path) -> Watcher {
    StateFile::open(path).unwrap().watch().unwrap()
}

/// Replaces `path` atomically, as careful writers do: a temporary file, then a rename.
fn replace(path: &Path, state: State) {
    let tmp = path.with_file_name(".state.tmp");
    fs::write(&tmp, format!("{state}\n")).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_file_in_a_temporary_directory_is_followed_with_inotify() {
    let dir = TempDir::new().unwrap();
    let file = StateFile::open(state_file(&dir, State::Normal)).unwrap();
    assert_eq!(file.wakeup(), Wakeup::Inotify);
}

#[test]
fn a_rewrite_in_place_is_seen() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    fs::write(&path, "prepared\n").unwrap();
    let change = watcher.next_change(Some(SHOULD_WAKE)).unwrap().unwrap();
    assert_eq!(
        (change.prev, change.state),
        (State::Normal, State::Prepared)
    );
}

#[test]
fn a_replacement_by_rename_is_seen() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    replace(&path, State::Prepared);
    let change = watcher.next_change(Some(SHOULD_WAKE)).unwrap();
    assert_eq!(change.map(|c| c.state), Some(State::Prepared));
    replace(&path, State::Normal);
    let change = watcher.next_change(Some(SHOULD_WAKE)).unwrap();
    assert_eq!(change.map(|c| c.state), Some(State::Normal));
}

#[test]
fn a_removal_ends_the_watch_with_gone_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    fs::remove_file(&path).unwrap();
    let started = Instant::now();
    let err = watcher.next_change(Some(SHOULD_WAKE)).unwrap_err();
    assert!(matches!(err, Error::Gone { .. }), "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn fast_rewrites_in_place_never_read_as_an_empty_state() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    let writer = {
        let path = path.clone();
        thread::spawn(move || {
            // For a second, rewrite it as fast as possible: each write truncates, then
            // writes, so a reader often lands in between. Re-reading at an interval saw an
            // empty file twice in a row and gave up with "empty state".
            let started = Instant::now();
            let mut i = 0u64;
            while started.elapsed() < Duration::from_secs(1) {
                let state = if i % 2 == 0 { "prepared\n" } else { "normal\n" };
                fs::write(&path, state).unwrap();
                i += 1;
            }
            fs::write(&path, "frozen\n").unwrap();
        })
    };
    let reached = watcher.wait_for(luo_user::StateSet::FROZEN, Some(SHOULD_WAKE));
    writer.join().unwrap();
    assert_eq!(reached.unwrap(), Some(State::Frozen));
}

#[test]
fn garbage_that_stays_ends_the_watch_after_the_writers_grace() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    fs::write(&path, "garbage\n").unwrap();
    let err = watcher.next_change(Some(SHOULD_WAKE)).unwrap_err();
    assert!(matches!(err, Error::Content { .. }), "{err}");
    assert!(err.to_string().contains("unknown state 'garbage'"), "{err}");
}

#[test]
fn writes_to_other_files_of_the_directory_do_not_wake_the_watcher() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    let noise = dir.path().join("other");
    let cpu_before = thread_cpu_time();
    let result = thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..50 {
                fs::write(&noise, "x").unwrap();
            }
        });
        watcher.next_change(Some(SHOULD_NOT_WAKE)).unwrap()
    });
    assert_eq!(result, None);
    assert!(thread_cpu_time() - cpu_before < Duration::from_millis(100));
}

#[test]
fn a_zero_timeout_reads_a_change_already_written() {
    let dir = TempDir::new().unwrap();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    fs::write(&path, "prepared\n").unwrap();
    let change = watcher.next_change(Some(Duration::ZERO)).unwrap();
    assert_eq!(change.map(|c| c.state), Some(State::Prepared));
    assert_eq!(watcher.try_next_change().unwrap(), None);
}
