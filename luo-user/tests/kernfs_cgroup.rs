//! The kernfs poll protocol on a real kernfs file: a cgroup's `cgroup.events`, notified the
//! way the luo state attribute is. Needs root (it mounts a private cgroup2).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{Cgroup, Populated, SETTLE, SHOULD_NOT_WAKE, SHOULD_WAKE, thread_cpu_time};
use luo_user::{Error, KernfsFile, LIVENESS_PERIOD, Wakeup, Watcher};

#[test]
fn a_cgroup_file_is_watched_by_poll_not_by_interval() {
    let cgroup = Cgroup::new();
    let file = KernfsFile::open(cgroup.events()).unwrap();
    assert_eq!(file.wakeup(), Wakeup::Priority);
}

#[test]
fn a_move_into_the_group_wakes_the_watcher_with_the_new_content() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    assert_eq!(watcher.current(), Populated(false));

    let change = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(SETTLE);
            cgroup.populate();
        });
        watcher.next_change(Some(SHOULD_WAKE)).unwrap()
    })
    .expect("the move should wake the watcher");

    assert_eq!(
        (change.prev, change.state),
        (Populated(false), Populated(true))
    );
    assert_eq!(change.seq, 1);
    assert_eq!(watcher.current(), Populated(true));
}

#[test]
fn each_change_gets_the_next_sequence_number() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    let first = watcher.next_change(Some(SHOULD_WAKE)).unwrap().unwrap();
    cgroup.depopulate();
    let second = watcher.next_change(Some(SHOULD_WAKE)).unwrap().unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(second.prev, first.state);
    assert!(second.at >= first.at);
}

#[test]
fn an_idle_file_does_not_wake_the_watcher() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    let started = Instant::now();
    assert_eq!(watcher.next_change(Some(SHOULD_NOT_WAKE)).unwrap(), None);
    assert!(started.elapsed() >= SHOULD_NOT_WAKE);
    assert_eq!(watcher.seq(), 0);
}

#[test]
fn quick_flips_between_reads_coalesce_into_one_wake_with_the_last_content() {
    let cgroup = Cgroup::new();
    let file = KernfsFile::open(cgroup.events()).unwrap();
    let mut buf = [0u8; 256];
    file.read_into(&mut buf).unwrap(); // arms the notification

    cgroup.populate();
    cgroup.depopulate();
    cgroup.populate();
    thread::sleep(SETTLE);

    assert!(file.wait(Some(Instant::now() + SHOULD_WAKE)).unwrap());
    let len = file.read_into(&mut buf).unwrap();
    assert!(
        buf[..len].starts_with(b"populated 1\n"),
        "{:?}",
        &buf[..len]
    );
    let second_wake = file.wait(Some(Instant::now() + SHOULD_NOT_WAKE)).unwrap();
    assert!(
        !second_wake,
        "three flips before one read gave more than one wake"
    );
}

#[test]
fn the_watcher_reports_coalesced_flips_as_one_change() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    cgroup.depopulate();
    cgroup.populate();
    thread::sleep(SETTLE);

    let change = watcher.next_change(Some(SHOULD_WAKE)).unwrap().unwrap();
    assert_eq!(
        (change.prev, change.state, change.seq),
        (Populated(false), Populated(true), 1)
    );
    assert_eq!(watcher.next_change(Some(SHOULD_NOT_WAKE)).unwrap(), None);
}

#[test]
fn a_flip_and_back_between_reads_is_not_a_change() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    cgroup.depopulate();
    thread::sleep(SETTLE);

    assert_eq!(watcher.next_change(Some(SHOULD_NOT_WAKE)).unwrap(), None);
    assert_eq!(watcher.current(), Populated(false));
}

#[test]
fn removing_the_group_ends_a_sleeping_watcher_with_gone_without_spinning() {
    let mut cgroup = Cgroup::new();
    let path = cgroup.events();
    let mut watcher = Watcher::<Populated>::open(&path).unwrap();

    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    let result = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(SETTLE);
            cgroup.remove();
        });
        watcher.next_change(Some(SHOULD_WAKE))
    });
    let waited = started.elapsed();
    let cpu = thread_cpu_time() - cpu_before;

    let err = result.expect_err("removal should end the watch");
    assert!(err.is_gone(), "{err}");
    let message = err.to_string();
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    // A cgroup is not luo's: the removal is not blamed on the module.
    assert!(message.contains("removed"), "{message}");
    assert!(!message.contains("module"), "{message}");
    assert!(
        waited < SETTLE + LIVENESS_PERIOD * 3,
        "noticed after {waited:?}"
    );
    assert!(
        cpu < Duration::from_millis(200),
        "burnt {cpu:?} of CPU while waiting"
    );
}

#[test]
fn a_watcher_asked_again_after_removal_fails_at_once() {
    let mut cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.remove();

    for _ in 0..3 {
        let started = Instant::now();
        let err = watcher.next_change(Some(SHOULD_WAKE)).unwrap_err();
        assert!(matches!(err, Error::Gone { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn wait_until_returns_at_once_when_the_condition_already_holds() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    let started = Instant::now();
    let value = watcher.wait_until(|p| !p.0, Some(SHOULD_WAKE)).unwrap();
    assert_eq!(value, Some(Populated(false)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn wait_until_wakes_when_the_condition_starts_to_hold() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    let value = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(SETTLE);
            cgroup.populate();
        });
        watcher.wait_until(|p| p.0, Some(SHOULD_WAKE)).unwrap()
    });
    assert_eq!(value, Some(Populated(true)));
}

#[test]
fn wait_until_times_out_when_the_condition_never_holds() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    assert_eq!(
        watcher.wait_until(|p| p.0, Some(SHOULD_NOT_WAKE)).unwrap(),
        None
    );
}

#[test]
fn a_zero_timeout_reads_a_pending_change() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    thread::sleep(SETTLE);
    // Someone driving the descriptor from their own epoll loop asks without sleeping.
    let change = watcher.next_change(Some(Duration::ZERO)).unwrap();
    assert_eq!(change.map(|c| c.state), Some(Populated(true)));
}

#[test]
fn try_next_change_reads_a_pending_change_and_nothing_else() {
    let cgroup = Cgroup::new();
    let mut watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    assert_eq!(watcher.try_next_change().unwrap(), None);
    cgroup.populate();
    thread::sleep(SETTLE);
    let started = Instant::now();
    let change = watcher
        .try_next_change()
        .unwrap()
        .expect("a pending change");
    assert_eq!(
        (change.prev, change.state),
        (Populated(false), Populated(true))
    );
    assert_eq!(watcher.try_next_change().unwrap(), None);
    assert!(started.elapsed() < Duration::from_secs(1), "it slept");
}

#[test]
fn the_watcher_is_an_iterator_of_changes_that_ends_after_an_error() {
    let mut cgroup = Cgroup::new();
    let watcher = Watcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    let mut changes = watcher;
    let first = changes.next().unwrap().unwrap();
    assert_eq!(first.state, Populated(true));
    cgroup.depopulate();
    thread::sleep(SETTLE);
    cgroup.remove();
    let rest: Vec<_> = changes.by_ref().collect();
    // Whether the depopulate was read before the removal depends on timing; the end does not.
    let last = rest.last().expect("at least the error");
    assert!(matches!(last, Err(Error::Gone { .. })), "{rest:?}");
    assert!(
        changes.next().is_none(),
        "the iterator goes on after its error"
    );
}

#[test]
fn how_often_a_watcher_wakes_depends_on_the_content_not_the_constructor() {
    let cgroup = Cgroup::new();
    let events = cgroup.events();
    // A cgroup file wakes now and then to see whether it was removed, however it was opened.
    let opened = Watcher::<Populated>::open(&events).unwrap();
    let made = Watcher::<Populated>::new(KernfsFile::open(&events).unwrap()).unwrap();
    assert_eq!(opened.liveness(), Some(LIVENESS_PERIOD));
    assert_eq!(made.liveness(), opened.liveness());
    // luo's state attribute notifies before removal: no periodic wake, however it is opened.
    assert_eq!(<luo_user::State as luo_user::Decode>::LIVENESS, None);
}
