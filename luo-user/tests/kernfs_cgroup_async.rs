//! The async watcher (feature `tokio`) on a real kernfs file, a cgroup's `cgroup.events`.
//! Needs root (it mounts a private cgroup2).

#![cfg(feature = "tokio")]

mod common;

use std::time::Instant;

use common::{Cgroup, Populated, SETTLE, SHOULD_NOT_WAKE, SHOULD_WAKE};
use luo_user::{AsyncWatcher, LIVENESS_PERIOD};
use tokio::time::timeout;

#[tokio::test]
async fn a_move_into_the_group_wakes_the_async_watcher() {
    let cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    assert_eq!(watcher.current(), Populated(false));

    let (change, ()) = tokio::join!(timeout(SHOULD_WAKE, watcher.next()), async {
        tokio::time::sleep(SETTLE).await;
        cgroup.populate();
    });

    let change = change.expect("the move should wake the watcher").unwrap();
    assert_eq!(
        (change.prev, change.state, change.seq),
        (Populated(false), Populated(true), 1)
    );
}

#[tokio::test]
async fn an_idle_file_does_not_wake_the_async_watcher() {
    let cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    assert!(timeout(SHOULD_NOT_WAKE, watcher.next()).await.is_err());
    assert_eq!(watcher.seq(), 0);
}

#[tokio::test]
async fn a_cancelled_next_loses_no_change() {
    let cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    assert!(timeout(SHOULD_NOT_WAKE, watcher.next()).await.is_err());
    cgroup.populate();
    let change = timeout(SHOULD_WAKE, watcher.next()).await.unwrap().unwrap();
    assert_eq!(change.state, Populated(true));
}

#[tokio::test]
async fn coalesced_flips_are_one_change_for_the_async_watcher() {
    let cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    cgroup.populate();
    cgroup.depopulate();
    cgroup.populate();
    tokio::time::sleep(SETTLE).await;

    let change = timeout(SHOULD_WAKE, watcher.next()).await.unwrap().unwrap();
    assert_eq!((change.state, change.seq), (Populated(true), 1));
    assert!(timeout(SHOULD_NOT_WAKE, watcher.next()).await.is_err());
}

#[tokio::test]
async fn async_wait_until_returns_at_once_or_on_the_change() {
    let cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    let now = timeout(SHOULD_NOT_WAKE, watcher.wait_until(|p| !p.0)).await;
    assert_eq!(now.unwrap().unwrap(), Populated(false));

    let (filled, ()) = tokio::join!(timeout(SHOULD_WAKE, watcher.wait_until(|p| p.0)), async {
        tokio::time::sleep(SETTLE).await;
        cgroup.populate();
    });
    assert_eq!(filled.unwrap().unwrap(), Populated(true));
}

#[tokio::test]
async fn removing_the_group_ends_the_async_watcher_with_gone() {
    let mut cgroup = Cgroup::new();
    let mut watcher = AsyncWatcher::<Populated>::open(cgroup.events()).unwrap();
    let started = Instant::now();
    let (result, ()) = tokio::join!(timeout(SHOULD_WAKE, watcher.next()), async {
        tokio::time::sleep(SETTLE).await;
        cgroup.remove();
    });
    let err = result.expect("removal should end the watch").unwrap_err();
    assert!(err.is_gone(), "{err}");
    assert!(started.elapsed() < SETTLE + LIVENESS_PERIOD * 3);
    // Asked again, it fails at once instead of spinning or sleeping.
    let again = timeout(SHOULD_NOT_WAKE, watcher.next()).await;
    assert!(
        again
            .expect("a second call should fail at once")
            .unwrap_err()
            .is_gone()
    );
}

#[tokio::test]
async fn the_async_watcher_is_a_stream_of_changes_that_ends_after_an_error() {
    use futures_core::Stream;
    use std::pin::Pin;

    /// The next item of a stream, without a combinator crate.
    async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
    }

    let mut cgroup = Cgroup::new();
    let mut changes = AsyncWatcher::<Populated>::open(cgroup.events())
        .unwrap()
        .into_stream();
    cgroup.populate();
    let first = timeout(SHOULD_WAKE, next(&mut changes)).await.unwrap();
    assert_eq!(first.unwrap().unwrap().state, Populated(true));
    cgroup.depopulate();
    tokio::time::sleep(SETTLE).await;
    cgroup.remove();
    let mut last = None;
    while let Some(item) = timeout(SHOULD_WAKE, next(&mut changes)).await.unwrap() {
        last = Some(item);
    }
    assert!(last.expect("at least the error").unwrap_err().is_gone());
}
