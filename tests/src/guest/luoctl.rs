//! `luoctl` against the real module: `watch` reports each transition that `luoctl prepare` and
//! `luoctl cancel` drive with the transition count, and counts the changes it slept through
//! even when they bring the state back, `wait` returns, the device's refusals read as they should (with their
//! own exit statuses), `generation` reads 0 on a cold boot, and `kexec` refuses outside
//! `prepared` and explains the kernel's `ENOEXEC` for a file that is no kernel.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use luo_state::State;

use crate::guest::nobody::Program;
use crate::{Outcome, dev, ensure, module, sysfs};

/// Long enough for a change to reach `luoctl watch` on a loaded TCG guest.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the `luoctl` checks with the module at `ko`; `luoctl` sits next to this binary.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let luoctl = luoctl_path()?;
    watch_reports_each_transition(&luoctl)?;
    wait_returns_when_reached(&luoctl)?;
    busy_device_is_explained(&luoctl)?;
    non_root_is_explained(&luoctl)?;
    refused_event_has_its_exit_status(&luoctl)?;
    generation_is_zero_after_a_cold_boot(&luoctl)?;
    kexec_refuses_and_explains(&luoctl)
}

/// The `luoctl` built beside this binary.
pub fn luoctl_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let path = exe.with_file_name("luoctl");
    ensure!(
        path.is_file(),
        "{} is missing: build luo-user's luoctl first",
        path.display()
    );
    Ok(path)
}

fn run_luoctl(path: &Path, args: &[&str]) -> Result<Output, String> {
    Command::new(path)
        .args(args)
        .output()
        .map_err(|err| format!("running luoctl {args:?}: {err}"))
}

fn expect_success(out: &Output, what: &str) -> Outcome {
    ensure!(
        out.status.success(),
        "luoctl {what} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Spawns `luoctl watch --json` and forwards its stdout lines.
fn spawn_watch(luoctl: &Path) -> Result<(Child, mpsc::Receiver<String>), String> {
    let mut child = Command::new(luoctl)
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("spawning luoctl watch: {err}"))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().ok_or("luoctl watch has no stdout")?;
    let stderr = child.stderr.take().ok_or("luoctl watch has no stderr")?;
    // The ready line comes on stderr after the first read: only then can no change be missed.
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = ready_tx.send(line);
        }
    });
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = ready_rx
        .recv_timeout(LINE_TIMEOUT)
        .map_err(|_| "luoctl watch printed no ready line".to_owned())?;
    ensure!(
        ready.contains("normal"),
        "the ready line does not name the state: {ready}"
    );
    Ok((child, rx))
}

fn watch_reports_each_transition(luoctl: &Path) -> Outcome {
    let (mut child, lines) = spawn_watch(luoctl)?;
    let steps = [
        ("prepare", State::Normal, State::Prepared),
        ("cancel", State::Prepared, State::Normal),
    ];
    let mut result = Ok(());
    let mut count = sysfs::transitions()?;
    'outer: for _ in 0..3 {
        for (command, prev, next) in steps {
            let out = run_luoctl(luoctl, &[command])?;
            if let Err(err) = expect_success(&out, command) {
                result = Err(err);
                break 'outer;
            }
            let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if printed != next.word() {
                result = Err(format!(
                    "luoctl {command} printed {printed:?}, expected '{next}'"
                ));
                break 'outer;
            }
            // Wait for watch's report before the next step, so no two changes coalesce.
            let line = match lines.recv_timeout(LINE_TIMEOUT) {
                Ok(line) => line,
                Err(_) => {
                    result = Err(format!(
                        "luoctl watch reported nothing after luoctl {command}"
                    ));
                    break 'outer;
                }
            };
            let want_prev = format!("\"prev\":\"{prev}\"");
            count += 1;
            // Seen one by one: the count rises by one, nothing missed.
            let want_state = format!("\"state\":\"{next}\",\"transitions\":{count},\"missed\":0}}");
            if !(line.contains(&want_prev) && line.contains(&want_state)) {
                result = Err(format!(
                    "after luoctl {command}, watch printed {line}, expected {want_prev} and \
                     {want_state}"
                ));
                break 'outer;
            }
        }
    }
    if result.is_ok() {
        result = watch_counts_what_it_could_not_see(luoctl, &child, &lines, count);
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// With the watcher stopped (`SIGSTOP`), prepare and cancel twice: the state ends where it
/// was, so without the counter the watcher would report nothing. Continued, it reports one
/// record from `normal` to `normal` with the four changes missed.
fn watch_counts_what_it_could_not_see(
    luoctl: &Path,
    child: &Child,
    lines: &mpsc::Receiver<String>,
    count: u64,
) -> Outcome {
    let pid = libc::pid_t::try_from(child.id()).map_err(|err| format!("pid: {err}"))?;
    // SAFETY: `kill` takes a pid and a signal number; `pid` is our own child, not yet reaped.
    let stopped = unsafe { libc::kill(pid, libc::SIGSTOP) } == 0;
    ensure!(
        stopped,
        "SIGSTOP luoctl watch: {}",
        std::io::Error::last_os_error()
    );
    let mut steps = Ok(());
    for command in ["prepare", "cancel", "prepare", "cancel"] {
        steps = run_luoctl(luoctl, &[command]).and_then(|out| expect_success(&out, command));
        if steps.is_err() {
            break;
        }
    }
    // SAFETY: As above.
    let resumed = unsafe { libc::kill(pid, libc::SIGCONT) } == 0;
    steps?;
    ensure!(
        resumed,
        "SIGCONT luoctl watch: {}",
        std::io::Error::last_os_error()
    );
    let line = lines
        .recv_timeout(LINE_TIMEOUT)
        .map_err(|_| "luoctl watch reported nothing for four changes it slept through")?;
    let want = format!(
        "\"prev\":\"normal\",\"state\":\"normal\",\"transitions\":{},\"missed\":4}}",
        count + 4
    );
    ensure!(
        line.contains(&want),
        "after four changes luoctl watch slept through, it printed {line}, expected {want}"
    );
    Ok(())
}

fn wait_returns_when_reached(luoctl: &Path) -> Outcome {
    let out = run_luoctl(luoctl, &["wait", "normal", "--timeout", "5s"])?;
    expect_success(&out, "wait normal (already there)")?;
    let timed_out = run_luoctl(luoctl, &["wait", "frozen", "--timeout", "1s"])?;
    ensure!(
        timed_out.status.code() == Some(124),
        "luoctl wait frozen --timeout 1s exited {}",
        timed_out.status
    );
    let mut waiter = Command::new(luoctl)
        .args(["wait", "prepared,frozen", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("spawning luoctl wait: {err}"))?;
    // Its ready line on stderr says it has read once, so the prepare below must wake it.
    let ready = match waiter
        .stderr
        .take()
        .map(|err| BufReader::new(err).lines().next())
    {
        Some(Some(Ok(line))) if line.contains("waiting for") => Ok(()),
        other => Err(format!("luoctl wait printed no ready line: {other:?}")),
    };
    let prepared =
        ready.and_then(|()| expect_success(&run_luoctl(luoctl, &["prepare"])?, "prepare"));
    if let Err(err) = prepared {
        let _ = waiter.kill();
        let _ = waiter.wait();
        return Err(err);
    }
    let out = waiter
        .wait_with_output()
        .map_err(|err| format!("luoctl wait: {err}"))?;
    expect_success(&out, "wait prepared,frozen")?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ensure!(printed == "prepared", "luoctl wait printed {printed:?}");
    expect_success(&run_luoctl(luoctl, &["cancel"])?, "cancel")
}

fn busy_device_is_explained(luoctl: &Path) -> Outcome {
    let held = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    let out = run_luoctl(luoctl, &["prepare"])?;
    drop(held);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(4),
        "luoctl prepare on a held device exited {}, expected 4 (busy)",
        out.status
    );
    ensure!(
        stderr.contains("busy") && stderr.contains("another agent"),
        "the EBUSY message says: {stderr}"
    );
    ensure!(
        sysfs::read_fresh()? == State::Normal,
        "the refused prepare changed the state"
    );
    Ok(())
}

fn non_root_is_explained(luoctl: &Path) -> Outcome {
    let luoctl = Program::copy(luoctl)?;
    let as_nobody = |args: &[&str]| {
        luoctl
            .command()
            .args(args)
            .output()
            .map_err(|err| format!("running luoctl {args:?} as nobody: {err}"))
    };
    let state = as_nobody(&["state"])?;
    expect_success(&state, "state (as nobody)")?;
    let out = as_nobody(&["prepare"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "luoctl prepare as nobody exited {}",
        out.status
    );
    ensure!(
        stderr.contains("run this as root"),
        "the EACCES message says: {stderr}"
    );
    Ok(())
}

fn refused_event_has_its_exit_status(luoctl: &Path) -> Outcome {
    let out = run_luoctl(luoctl, &["finish"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(3),
        "luoctl finish in normal exited {}, expected 3 (refused): {stderr}",
        out.status
    );
    ensure!(
        stderr.contains("refused 'finish'"),
        "the refusal says: {stderr}"
    );
    let json = run_luoctl(luoctl, &["prepare", "--json"])?;
    expect_success(&json, "prepare --json")?;
    let printed = String::from_utf8_lossy(&json.stdout);
    ensure!(
        printed == "{\"v\":1,\"state\":\"prepared\"}\n",
        "luoctl prepare --json printed {printed:?}"
    );
    expect_success(&run_luoctl(luoctl, &["cancel"])?, "cancel")
}

fn generation_is_zero_after_a_cold_boot(luoctl: &Path) -> Outcome {
    let out = run_luoctl(luoctl, &["generation", "--json"])?;
    expect_success(&out, "generation --json")?;
    let printed = String::from_utf8_lossy(&out.stdout);
    ensure!(
        printed == "{\"v\":1,\"generation\":0}\n",
        "luoctl generation --json printed {printed:?} on a cold boot"
    );
    Ok(())
}

fn kexec_refuses_and_explains(luoctl: &Path) -> Outcome {
    let not_a_kernel = std::env::temp_dir().join("luo-not-a-kernel");
    std::fs::write(&not_a_kernel, b"this is not a bzImage")
        .map_err(|err| format!("writing {}: {err}", not_a_kernel.display()))?;
    let path = not_a_kernel.to_string_lossy().into_owned();
    // In `normal`: refused by the state machine before anything is loaded.
    let out = run_luoctl(luoctl, &["kexec", "--load-only", "--reuse-cmdline", &path])?;
    ensure!(
        out.status.code() == Some(3),
        "luoctl kexec in normal exited {}, expected 3",
        out.status
    );
    // In `prepared`: the kernel itself refuses a file that is no kernel image (ENOEXEC). No
    // agent runs here, so nothing to wait for.
    expect_success(&run_luoctl(luoctl, &["prepare"])?, "prepare")?;
    let out = run_luoctl(
        luoctl,
        &[
            "kexec",
            "--load-only",
            "--no-wait",
            "--reuse-cmdline",
            &path,
        ],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    expect_success(&run_luoctl(luoctl, &["cancel"])?, "cancel")?;
    ensure!(
        out.status.code() == Some(1),
        "luoctl kexec of a text file exited {}: {stderr}",
        out.status
    );
    // With KHO on (the guest's default) the kernel refuses the file with ENOEXEC; a guest
    // booted with kho=off is refused before the load, saying how to turn KHO on.
    let expected = if Path::new("/sys/kernel/debug/kho").is_dir() {
        "CONFIG_RELOCATABLE"
    } else {
        "kho=on"
    };
    ensure!(
        stderr.contains(expected),
        "the refusal does not say {expected:?}: {stderr}"
    );
    Ok(())
}
