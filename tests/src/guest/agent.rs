//! `luoctl agent` against the real module: hooks that succeed in `prepared` leave the live
//! update alone; a failing `prepared` hook makes the agent send CANCEL through the device,
//! naming the hook, and `normal.d` runs once the state is back. A stand-in for systemd
//! listens on `NOTIFY_SOCKET` and must hear `READY=1`; the session is printed as notes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use luo_state::State;

use crate::guest::lines::{self, Lines, Stream};
use crate::guest::luoctl::luoctl_path;
use crate::{Outcome, ensure, module, sysfs};

/// Long enough for a hook to run and the agent to log it on a loaded TCG guest.
const STEP: Duration = Duration::from_secs(30);

/// `luoctl agent -n`'s exit status when a hook failed (see `luoctl --help`).
const HOOK_FAILED: i32 = 8;

/// Runs the agent checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let luoctl = luoctl_path()?;
    let tree = HooksTree::new()?;
    let hooks = tree.root.to_string_lossy().into_owned();
    let socket_path = tree.root.join("notify");
    let systemd = UnixDatagram::bind(&socket_path)
        .map_err(|err| format!("binding {}: {err}", socket_path.display()))?;
    let mut agent = Lines::spawn_with_env(
        &luoctl,
        &["agent", "--hooks-dir", &hooks, "--json", "-n", "4"],
        &[("NOTIFY_SOCKET", &socket_path)],
    )?;
    agent.expect(Stream::Err, "watching", STEP)?;
    let ready = receive(&systemd)?;
    ensure!(
        ready.starts_with("READY=1\n"),
        "the first notification was {ready:?}, not READY=1"
    );

    // Round 1: every prepared hook succeeds, so the agent leaves `prepared` alone.
    lines::run_ok(&luoctl, "prepare")?;
    agent.expect(Stream::Err, "prepared.d/30-last succeeded", STEP)?;
    ensure!(
        sysfs::read_fresh()? == State::Prepared,
        "the agent changed the state although every prepared hook succeeded"
    );
    lines::run_ok(&luoctl, "cancel")?;
    agent.expect(Stream::Err, "normal.d/10-resume succeeded", STEP)?;

    // Round 2: 20-check fails, so 30-last never runs and the agent cancels.
    tree.arm_failure()?;
    lines::run_ok(&luoctl, "prepare")?;
    let cancelled = agent.expect(Stream::Err, "live update cancelled", STEP)?;
    ensure!(
        cancelled.contains("prepared.d/20-check failed") && cancelled.ends_with("state normal"),
        "the cancel line says: {cancelled}"
    );
    agent.expect(Stream::Err, "normal.d/10-resume succeeded", STEP)?;
    // A hook failed in round 2, so `-n` ends with the agent's "a hook failed" status.
    let status = agent.wait(STEP)?;
    ensure!(
        status.code() == Some(HOOK_FAILED),
        "the agent exited {status}, expected {HOOK_FAILED} (a hook failed):\n{}",
        agent.transcript()
    );
    ensure!(
        sysfs::read_fresh()? == State::Normal,
        "after the failed hook the state is not normal"
    );
    let ran = tree.ran()?;
    let expected = [
        "10-first",
        "20-check",
        "30-last",
        "10-resume",
        "10-first",
        "20-check",
        "10-resume",
    ];
    ensure!(
        ran == expected,
        "the hooks ran as {ran:?}, expected {expected:?}"
    );
    let records: Vec<&String> = agent
        .seen
        .iter()
        .filter(|(stream, _)| *stream == Stream::Out)
        .map(|(_, line)| line)
        .collect();
    let states: Vec<&str> = records
        .iter()
        .filter_map(|line| line.split("\"state\":\"").nth(1)?.split('"').next())
        .collect();
    ensure!(
        states == ["prepared", "normal", "prepared", "normal"],
        "the agent's records on stdout: {records:?}"
    );
    // The session as a person sees it: the notifications, then the agent's lines.
    println!("note: NOTIFY_SOCKET heard: {ready:?}");
    for (stream, line) in &agent.seen {
        let stream = if *stream == Stream::Out {
            "stdout"
        } else {
            "stderr"
        };
        println!("note: {stream}: {line}");
    }
    Ok(())
}

/// One datagram from the agent, within `STEP`.
fn receive(socket: &UnixDatagram) -> Result<String, String> {
    socket
        .set_read_timeout(Some(STEP))
        .map_err(|err| err.to_string())?;
    let mut buf = [0u8; 256];
    let len = socket
        .recv(&mut buf)
        .map_err(|err| format!("no notification within {STEP:?}: {err}"))?;
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// A hooks tree in /tmp whose hooks append their names to a log.
struct HooksTree {
    root: PathBuf,
    log: PathBuf,
    fail: PathBuf,
}

impl HooksTree {
    fn new() -> Result<HooksTree, String> {
        let root = std::env::temp_dir().join(format!("luo-agent-hooks-{}", std::process::id()));
        let tree = HooksTree {
            log: root.join("ran"),
            fail: root.join("fail"),
            root,
        };
        let log = tree.log.display().to_string();
        let fail = tree.fail.display().to_string();
        tree.hook(
            "prepared.d/10-first",
            &format!("echo 10-first >> {log}\necho \"first: saving ($LUO_PREV_STATE -> $LUO_STATE, change $LUO_SEQ)\""),
        )?;
        tree.hook(
            "prepared.d/20-check",
            &format!("echo 20-check >> {log}\n[ ! -e {fail} ] || {{ echo 'check: refusing' >&2; exit 3; }}"),
        )?;
        tree.hook("prepared.d/30-last", &format!("echo 30-last >> {log}"))?;
        tree.hook("normal.d/10-resume", &format!("echo 10-resume >> {log}"))?;
        Ok(tree)
    }

    fn hook(&self, name: &str, body: &str) -> Outcome {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        }
        fs::write(&path, format!("#!/bin/sh\n{body}\n"))
            .map_err(|err| format!("{}: {err}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Makes `20-check` fail from now on.
    fn arm_failure(&self) -> Outcome {
        fs::write(&self.fail, b"").map_err(|err| format!("{}: {err}", self.fail.display()))
    }

    /// The hooks that ran, in order.
    fn ran(&self) -> Result<Vec<String>, String> {
        let text = fs::read_to_string(&self.log)
            .map_err(|err| format!("{}: {err}", self.log.display()))?;
        Ok(text.lines().map(str::to_owned).collect())
    }
}

impl Drop for HooksTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
