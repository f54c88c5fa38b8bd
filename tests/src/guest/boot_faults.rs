//! The failures a boot option causes, which fault injection does not reach: each runs in a
//! guest booted with it (`cargo xtask test kernel/kho-off`, `kernel/debugfs-off`).
//!
//! - `kho=off`: KHO is off, so luo has nowhere to put its handover record. The load goes on
//!   without it and says so in one warning, whole otherwise (state, device, test hook); the
//!   hook's damage of the record has nothing to damage; an unload leaves nothing behind and
//!   the next load is the same.
//! - `debugfs=off`: the test hook cannot be created, so a load that asks for it
//!   (`selftest=1`) fails with one error line and leaves nothing behind: the next load,
//!   without the hook, goes on. In 7.3 KHO needs its debugfs directory for its outgoing state
//!   and turns itself off without it (`kho_init`), so that load also warns, once, that KHO is
//!   off.
//!
//! Throughout, the log has no splat and the kernel counts no WARN.

use std::path::Path;

use luo_state::{Damage, State};
use luo_sysfs_abi::log::Kind;
use luo_sysfs_abi::path::{DEVICE_PATH, SELFTEST_PATH, SYSFS_DIR};

use crate::kmsg::{self, Kmsg, Line, join_lines, luo_errors};
use crate::{Outcome, dev, ensure, module, sysfs};

/// KHO's debugfs directory: there whenever KHO is on (this kernel has its debugfs view).
const KHO_DIR: &str = "/sys/kernel/debug/kho";
/// What an unload or a failed load must not leave behind (besides the test hook's debugfs
/// file, which [`SELFTEST_PATH`] names where debugfs exists).
const LEFT_BEHIND: &[&str] = &[SYSFS_DIR, DEVICE_PATH, "/sys/module/luo"];

/// `kho=off`: two loads, each whole without its record, and nothing left after each unload.
pub fn kho_off(ko: &Path) -> Outcome {
    module::mount_debugfs()?;
    ensure!(
        !Path::new(KHO_DIR).exists(),
        "{KHO_DIR} exists: KHO is on, despite kho=off on the command line"
    );
    let warnings = kmsg::warn_count()?;
    let mut log = Kmsg::open()?;
    for load in ["the first load", "the load after an unload"] {
        module::insmod(ko, &["selftest=1"]).map_err(|err| format!("{load} with kho=off: {err}"))?;
        let lines = log.take()?;
        check_ready(&lines, load, 1)?;
        ensure!(
            Path::new(SELFTEST_PATH).exists(),
            "{load} with kho=off created no test hook"
        );
        let damaged = dev::selftest_damage(Damage::Magic);
        ensure!(
            damaged == Err(libc::EOPNOTSUPP),
            "{load} with kho=off: damaging the record that does not exist gave {damaged:?}, \
             expected EOPNOTSUPP"
        );
        module::rmmod()?;
        nothing_left(&format!("the unload after {load}"))?;
        no_splat(&log.take()?, load)?;
    }
    no_new_warning(warnings)
}

/// `debugfs=off`: a load with the test hook fails with one line and leaves nothing behind; a
/// load without it goes on.
pub fn debugfs_off(ko: &Path) -> Outcome {
    let filesystems = std::fs::read_to_string("/proc/filesystems")
        .map_err(|err| format!("/proc/filesystems: {err}"))?;
    ensure!(
        !filesystems.lines().any(|l| l.ends_with("\tdebugfs")),
        "debugfs is registered, despite debugfs=off on the command line"
    );
    let warnings = kmsg::warn_count()?;
    let mut log = Kmsg::open()?;

    let refused = module::insmod(ko, &["selftest=1"]);
    ensure!(
        refused.is_err(),
        "luo loaded with selftest=1 although debugfs is off"
    );
    let lines = log.take()?;
    no_splat(&lines, "the load with selftest=1")?;
    let errors = luo_errors(&lines);
    ensure!(
        errors == 1 && lines.iter().any(|l| l.luo() == Some(Kind::NotLoading)),
        "the load with selftest=1 and debugfs off logged {errors} error lines, expected one \
         '{}':\n{}",
        Kind::NotLoading.opening(),
        join_lines(&lines)
    );
    nothing_left("the load with selftest=1 that failed")?;

    module::insmod(ko, &[]).map_err(|err| format!("the load without selftest=1: {err}"))?;
    let lines = log.take()?;
    check_ready(&lines, "the load without selftest=1", 1)?;
    module::rmmod()?;
    nothing_left("the unload")?;
    no_splat(&log.take()?, "the unload")?;
    no_new_warning(warnings)
}

/// Checks the lines of a load that went on: ready in `normal`, no error line, `kho_off` lines
/// saying KHO is off; and its state and device there.
fn check_ready(lines: &[Line], context: &str, kho_off: usize) -> Outcome {
    no_splat(lines, context)?;
    let said_off = lines
        .iter()
        .filter(|l| l.luo() == Some(Kind::KhoOff))
        .count();
    ensure!(
        luo_errors(lines) == 0
            && said_off == kho_off
            && lines.iter().any(|l| l.luo() == Some(Kind::Ready)),
        "{context}: expected luo ready, no error line and {kho_off} line(s) '{}', got:\n{}",
        Kind::KhoOff.opening(),
        join_lines(lines)
    );
    for path in [SYSFS_DIR, DEVICE_PATH] {
        ensure!(Path::new(path).exists(), "{context}: no {path}");
    }
    let state = sysfs::read_fresh()?;
    ensure!(
        state == State::Normal,
        "{context}: the state is [{state}] after a cold boot"
    );
    Ok(())
}

/// Fails when anything of luo's is left: its sysfs group, its device, its module, its test
/// hook.
fn nothing_left(context: &str) -> Outcome {
    for path in LEFT_BEHIND.iter().chain(&[SELFTEST_PATH]) {
        ensure!(!Path::new(path).exists(), "{context} left {path} behind");
    }
    Ok(())
}

/// Fails when `lines` have a splat or a `slub_debug` report.
fn no_splat(lines: &[Line], context: &str) -> Outcome {
    ensure!(
        !lines.iter().any(|l| kmsg::is_splat(&l.text)),
        "{context}: the kernel log has a splat:\n{}",
        join_lines(lines)
    );
    Ok(())
}

/// Fails when the kernel counted a WARN since `before`.
fn no_new_warning(before: u64) -> Outcome {
    let now = kmsg::warn_count()?;
    ensure!(
        now == before,
        "the kernel counted {} WARNs during the test",
        now - before
    );
    Ok(())
}
