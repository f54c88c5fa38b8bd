//! Test 6: unloading while files are open and watchers poll: no oops; pollers wake with
//! `POLLERR`, reads fail with `ENODEV`; the open control device keeps the module loaded; and
//! pollers that ignore `ENODEV` and poll again are woken too, over many unloads.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use luo_state::{Event, State};

use crate::{Outcome, dev, ensure, module, sysfs};

const WATCHERS: usize = 3;

/// Unload rounds for the pollers that poll again after `ENODEV`.
const ROUNDS: usize = 40;
/// Such pollers per round.
const STUBBORN: usize = 4;
/// How long any poll may sleep before the test calls it lost: far above a TCG unload.
const POLL_BOUND: Duration = Duration::from_secs(10);

/// Runs the unload checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    dev::trigger(&control, Event::Prepare)?;
    let refused = module::rmmod();
    ensure!(
        refused.is_err(),
        "rmmod succeeded while /dev/liveupdate was open"
    );
    ensure!(
        sysfs::read_fresh()? == State::Prepared,
        "the refused rmmod changed the state"
    );
    drop(control);

    let (ready_tx, ready_rx) = mpsc::channel();
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| {
            let ready = ready_tx.clone();
            thread::spawn(move || -> Outcome {
                let file = armed_state_file(&ready)?;
                let revents = sysfs::poll_pri(&file, Duration::from_secs(30))
                    .map_err(|e| format!("poll: {e}"))?;
                let Some(revents) = revents else {
                    return Err("a poller was not woken by the unload".to_owned());
                };
                ensure!(revents.err, "a poller woke without POLLERR: {revents:?}");
                match sysfs::read_raw(&file) {
                    Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {}
                    other => {
                        return Err(format!(
                            "a read after unload gave {other:?}, expected ENODEV"
                        ));
                    }
                }
                // Gone for good: poll must keep returning at once, never block.
                let again = sysfs::poll_pri(&file, Duration::from_secs(5))
                    .map_err(|e| format!("poll: {e}"))?;
                ensure!(
                    again.is_some_and(|r| r.err),
                    "poll after unload blocked or lost POLLERR: {again:?}"
                );
                Ok(())
            })
        })
        .collect();
    // The library's watcher sleeps in poll with no timeout on luo's file: only the module's
    // notify before the removal can end its wait, and it must end with "gone".
    let ready = ready_tx.clone();
    let library = thread::spawn(move || -> Outcome {
        let mut watcher =
            luo_user::Watcher::open_default().map_err(|err| format!("library watcher: {err}"))?;
        // No periodic look: if this watcher ends, the module's notify ended it.
        ensure!(
            watcher.file().liveness().is_none(),
            "the library watcher polls periodically on luo's file"
        );
        ready.send(()).map_err(|_| "main thread gone".to_owned())?;
        match watcher.next_change(Some(Duration::from_secs(30))) {
            Err(err) if err.is_gone() => Ok(()),
            other => Err(format!(
                "the library watcher ended with {other:?}, expected 'gone'"
            )),
        }
    });
    for _ in 0..=WATCHERS {
        ready_rx
            .recv()
            .map_err(|_| "a watcher stopped early".to_owned())?;
    }
    // Let the watchers enter poll before the unload.
    thread::sleep(Duration::from_millis(300));
    module::rmmod()?;
    for (i, watcher) in watchers.into_iter().enumerate() {
        watcher
            .join()
            .map_err(|_| format!("watcher {i} panicked"))??;
    }
    library
        .join()
        .map_err(|_| "the library watcher panicked".to_owned())??;
    ensure!(
        !Path::new(luo_sysfs_abi::path::SYSFS_DIR).exists(),
        "the sysfs directory outlived the module"
    );
    module::load_with_selftest(ko)?;
    ensure!(
        sysfs::read_fresh()? == State::Normal,
        "a reload does not start in 'normal'"
    );
    module::rmmod()?;
    for round in 0..ROUNDS {
        stubborn_pollers_wake(ko).map_err(|err| format!("unload round {round}: {err}"))?;
    }
    module::load_with_selftest(ko)
}

/// Opens `state` and reads it, which arms the next poll, then tells the main thread this
/// poller is ready.
fn armed_state_file(ready: &mpsc::Sender<()>) -> Result<std::fs::File, String> {
    let file = sysfs::open().map_err(|err| format!("opening state: {err}"))?;
    sysfs::read(&file)?;
    ready.send(()).map_err(|_| "main thread gone".to_owned())?;
    Ok(file)
}

/// One unload under pollers that behave like `while poll(); pread()` loops (systemd's
/// sd-event, gpiomon): after the read that fails with `ENODEV` they poll again, and that poll
/// must return, whether it started before the file's removal or after it.
fn stubborn_pollers_wake(ko: &Path) -> Outcome {
    module::insmod(ko, &[])?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let pollers: Vec<_> = (0..STUBBORN)
        .map(|_| {
            let ready = ready_tx.clone();
            thread::spawn(move || -> Outcome {
                let file = armed_state_file(&ready)?;
                let mut gone = false;
                // Bounded: a poller that is never told `ENODEV` fails rather than spinning.
                for _ in 0..100 {
                    let woke =
                        sysfs::poll_pri(&file, POLL_BOUND).map_err(|e| format!("poll: {e}"))?;
                    ensure!(
                        woke.is_some(),
                        "a poller slept {POLL_BOUND:?} through the unload (gone: {gone})"
                    );
                    if gone {
                        return Ok(());
                    }
                    gone = matches!(
                        sysfs::read_raw(&file),
                        Err(err) if err.raw_os_error() == Some(libc::ENODEV)
                    );
                }
                Err("a poller never read ENODEV".to_owned())
            })
        })
        .collect();
    drop(ready_tx);
    for _ in 0..STUBBORN {
        ready_rx
            .recv()
            .map_err(|_| "a poller stopped early".to_owned())?;
    }
    module::rmmod()?;
    for (i, poller) in pollers.into_iter().enumerate() {
        poller
            .join()
            .map_err(|_| format!("poller {i} panicked"))??;
    }
    Ok(())
}
