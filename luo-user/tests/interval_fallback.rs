//! A state file on a file system where inotify is not assumed to see every change (here a
//! private ramfs; procfs and network file systems in real life) is re-read at an interval.
//! Needs root (it mounts the ramfs).

mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::Ramfs;
use luo_user::{Error, State, StateFile, StateSet, Wakeup, Watcher};

const INTERVAL: Duration = Duration::from_millis(20);
const SHOULD_WAKE: Duration = Duration::from_secs(20);
const SHOULD_NOT_WAKE: Duration = Duration::from_millis(300);

fn state_file(dir: &Ramfs, state: State) -> std::path::PathBuf {
    let path = dir.path().join("state");
    write_state(&path, state);
    path
}

/// What sysfs would show for `state`, written in place.
fn write_state(path: &Path, state: State) {
    fs::write(path, format!("{state}\n")).unwrap();
}

fn watcher(path: &Path) -> Watcher {
    StateFile::open_with_interval(path, INTERVAL)
        .unwrap()
        .watch()
        .unwrap()
}

#[test]
fn a_regular_file_is_re_read_at_the_configured_interval() {
    let dir = Ramfs::new();
    let file = StateFile::open_with_interval(state_file(&dir, State::Normal), INTERVAL).unwrap();
    assert_eq!(file.wakeup(), Wakeup::Interval(INTERVAL));
}

#[test]
fn the_watcher_sees_a_rewrite_from_another_thread() {
    let dir = Ramfs::new();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    assert_eq!(watcher.current(), State::Normal);

    let change = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(100));
            write_state(&path, State::Prepared);
        });
        watcher.next_change(Some(SHOULD_WAKE)).unwrap()
    })
    .expect("the rewrite should be seen");

    assert_eq!(
        (change.prev, change.state, change.seq),
        (State::Normal, State::Prepared, 1)
    );
}

#[test]
fn an_unchanged_file_reports_nothing() {
    let dir = Ramfs::new();
    let mut watcher = watcher(&state_file(&dir, State::Normal));
    let started = Instant::now();
    assert_eq!(watcher.next_change(Some(SHOULD_NOT_WAKE)).unwrap(), None);
    assert!(started.elapsed() >= SHOULD_NOT_WAKE);
}

#[test]
fn wait_for_returns_at_once_when_already_in_the_set() {
    let dir = Ramfs::new();
    let mut watcher = watcher(&state_file(&dir, State::Updated));
    let started = Instant::now();
    let set = StateSet::NORMAL | StateSet::UPDATED;
    assert_eq!(
        watcher.wait_for(set, Some(SHOULD_WAKE)).unwrap(),
        Some(State::Updated)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn wait_for_follows_changes_until_one_is_in_the_set() {
    let dir = Ramfs::new();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    let reached = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(100));
            write_state(&path, State::Prepared);
            thread::sleep(Duration::from_millis(100));
            write_state(&path, State::Frozen);
        });
        watcher
            .wait_for(StateSet::FROZEN, Some(SHOULD_WAKE))
            .unwrap()
    });
    assert_eq!(reached, Some(State::Frozen));
}

#[test]
fn wait_for_times_out_when_the_state_never_comes() {
    let dir = Ramfs::new();
    let mut watcher = watcher(&state_file(&dir, State::Normal));
    assert_eq!(
        watcher
            .wait_for(StateSet::PREPARED, Some(SHOULD_NOT_WAKE))
            .unwrap(),
        None
    );
}

#[test]
fn garbage_that_stays_ends_the_watch_with_the_path() {
    let dir = Ramfs::new();
    let path = state_file(&dir, State::Normal);
    let mut watcher = watcher(&path);
    fs::write(&path, "garbage\n").unwrap();
    let err = watcher.next_change(Some(SHOULD_WAKE)).unwrap_err();
    assert!(matches!(err, Error::Content { .. }), "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_watcher_sees_a_rewrite_of_a_regular_file() {
    let dir = Ramfs::new();
    let path = state_file(&dir, State::Normal);
    let file = luo_user::KernfsFile::open_with_interval(&path, INTERVAL).unwrap();
    let mut watcher = luo_user::AsyncWatcher::<State>::new(file).unwrap();
    let (change, ()) = tokio::join!(tokio::time::timeout(SHOULD_WAKE, watcher.next()), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        write_state(&path, State::Prepared);
    });
    assert_eq!(change.unwrap().unwrap().state, State::Prepared);
    let reached = tokio::time::timeout(SHOULD_NOT_WAKE, watcher.wait_for(StateSet::PREPARED)).await;
    assert_eq!(reached.unwrap().unwrap(), State::Prepared);
}
