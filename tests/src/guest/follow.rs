//! `--follow` against the real module: `luoctl watch --follow` and `luoctl agent --follow`
//! outlive an `rmmod`, wait for the attribute without spinning, re-attach after `insmod`, and
//! go on reporting and acting. And the library's watchers of the attribute never wake
//! periodically, however they are built.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use luo_sysfs_abi::path::STATE_PATH;

use crate::guest::lines::{self, Lines, Stream, cpu_ticks};
use crate::guest::luoctl::luoctl_path;
use crate::{Outcome, ensure, module};

/// Long enough for an unload, a load or a hook to be seen on a loaded TCG guest.
const STEP: Duration = Duration::from_secs(30);
/// How long the followers stay detached while their CPU time is measured.
const DETACHED: Duration = Duration::from_secs(3);
/// More CPU than this while detached (clock ticks, 100 a second) would be spinning: one
/// `open` a second costs far less than one tick.
const SPIN_TICKS: u64 = 10;

/// Runs the follow checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    same_liveness_whatever_the_constructor()?;
    let luoctl = luoctl_path()?;
    let hooks = std::env::temp_dir().join(format!("luo-follow-hooks-{}", std::process::id()));
    let marker = hooks.join("prepared-ran");
    write_hook(
        &hooks.join("prepared.d/10-mark"),
        &format!("touch {}", marker.display()),
    )?;
    let hooks_arg = hooks.to_string_lossy().into_owned();

    let mut watch = Lines::spawn(&luoctl, &["watch", "--follow", "--json"])?;
    watch.expect(Stream::Err, "watching", STEP)?;
    let mut agent = Lines::spawn(
        &luoctl,
        &["agent", "--follow", "--hooks-dir", &hooks_arg, "-n", "2"],
    )?;
    agent.expect(Stream::Err, "watching", STEP)?;

    module::rmmod()?;
    watch.expect(Stream::Err, "waiting for it to come back", STEP)?;
    agent.expect(Stream::Err, "waiting for it to come back", STEP)?;
    let before = (cpu_ticks(watch.pid())?, cpu_ticks(agent.pid())?);
    thread::sleep(DETACHED);
    let after = (cpu_ticks(watch.pid())?, cpu_ticks(agent.pid())?);
    let burnt = (after.0 - before.0, after.1 - before.1);
    ensure!(
        burnt.0 <= SPIN_TICKS && burnt.1 <= SPIN_TICKS,
        "detached for {DETACHED:?}, watch used {} and agent {} CPU ticks: spinning",
        burnt.0,
        burnt.1
    );

    module::insmod(ko, &["selftest=1"])?;
    watch.expect(Stream::Err, "is back (state: normal)", STEP)?;
    agent.expect(Stream::Err, "is back (state: normal)", STEP)?;

    // Both go on: watch reports the prepare, the agent runs its prepared hook.
    lines::run_ok(&luoctl, "prepare")?;
    let record = watch.expect(Stream::Out, "\"state\":\"prepared\"", STEP)?;
    ensure!(
        record.contains("\"seq\":1,\"prev\":\"normal\""),
        "the first record after re-attaching: {record}"
    );
    agent.expect(Stream::Err, "prepared.d/10-mark succeeded", STEP)?;
    ensure!(marker.exists(), "the prepared hook did not run");
    lines::run_ok(&luoctl, "cancel")?;
    watch.expect(Stream::Out, "\"state\":\"normal\"", STEP)?;
    let status = agent.wait(STEP)?;
    ensure!(
        status.success(),
        "the agent exited {status}:\n{}",
        agent.transcript()
    );
    let _ = fs::remove_dir_all(&hooks);
    println!(
        "note: followers detached over rmmod used {} and {} CPU ticks in {DETACHED:?}, re-attached after insmod",
        burnt.0, burnt.1
    );
    Ok(())
}

/// The library decides how often a watcher of luo's attribute wakes from its content, not
/// from the constructor: luo's module notifies before removal, so none wakes periodically.
fn same_liveness_whatever_the_constructor() -> Outcome {
    let error = |err: luo_user::Error| err.to_string();
    let opened = luo_user::Watcher::<luo_user::State>::open(STATE_PATH).map_err(error)?;
    let made = luo_user::StateFile::open(STATE_PATH)
        .and_then(luo_user::StateFile::watch)
        .map_err(error)?;
    ensure!(
        opened.liveness().is_none() && made.liveness().is_none(),
        "watchers of {STATE_PATH} wake periodically: Watcher::open {:?}, StateFile::watch {:?}",
        opened.liveness(),
        made.liveness()
    );
    Ok(())
}

fn write_hook(path: &Path, body: &str) -> Outcome {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .map_err(|err| format!("{}: {err}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|err| format!("{}: {err}", path.display()))
}
