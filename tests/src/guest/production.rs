//! The test hook exists only in test builds: a production build (`luo.ko` without
//! `LUO_SELFTEST=y`) refuses `selftest=1` with one log line and leaves nothing behind, and
//! loads without it with no debugfs hook and no `TAINT_TEST`; the test build's hook taints the
//! kernel and says so once.

use std::path::{Path, PathBuf};

use luo_sysfs_abi::log::{Kind, Line, NotLoading};
use luo_sysfs_abi::path::{SELFTEST_PATH, SYSFS_DIR};

use crate::{Outcome, ensure, kmsg, module};

/// The line a build without the hook logs for `selftest=1`.
const NO_HOOK: Line<'_> = Line::NotLoading(NotLoading::NoTestHook);

/// The line the hook logs when it is created.
const HOOK_TAINTS: Kind = Kind::TestHookCreated;

/// `TAINT_TEST`'s bit in `/proc/sys/kernel/tainted`.
const TAINT_TEST: u64 = 1 << 18;

/// Runs the checks with the test build at `ko` and the production build from
/// `LUO_PRODUCTION_KO` (set by `cargo xtask test-kernel`).
pub fn run(ko: &Path) -> Outcome {
    let production = std::env::var_os("LUO_PRODUCTION_KO")
        .map(PathBuf::from)
        .ok_or("LUO_PRODUCTION_KO is not set: run this test through cargo xtask test-kernel")?;
    module::mount_debugfs()?;
    let before = kmsg::dmesg()?.lines().count();
    ensure!(
        module::insmod(&production, &["selftest=1"]).is_err(),
        "the production build loaded with selftest=1"
    );
    let log = kmsg::dmesg()?;
    let new: Vec<&str> = log.lines().skip(before).collect();
    // The module loader's own `luo: ` line (the out-of-tree taint) is not luo's.
    let luo_lines = kmsg::luo_lines(new.iter().copied());
    let no_hook = NO_HOOK.to_string();
    ensure!(
        luo_lines.len() == 1 && luo_lines[0].text == no_hook,
        "expected the one line '{no_hook}', the log says:\n{}",
        new.join("\n")
    );
    ensure!(
        !Path::new(SYSFS_DIR).exists(),
        "the refused load left {SYSFS_DIR} behind"
    );

    module::insmod(&production, &[])?;
    ensure!(
        !Path::new(SELFTEST_PATH).exists(),
        "the production build created {SELFTEST_PATH}"
    );
    ensure!(
        tainted()? & TAINT_TEST == 0,
        "the production build tainted the kernel with TAINT_TEST"
    );
    module::rmmod()?;

    module::load_with_selftest(ko)?;
    ensure!(
        tainted()? & TAINT_TEST != 0,
        "the test hook exists, but the kernel is not tainted with TAINT_TEST"
    );
    let log = kmsg::dmesg()?;
    let hook_lines = kmsg::luo_lines(log.lines())
        .iter()
        .filter(|line| line.kind == HOOK_TAINTS)
        .count();
    ensure!(
        hook_lines == 1,
        "the hook's line '{}' appears {hook_lines} times",
        HOOK_TAINTS.opening()
    );
    Ok(())
}

fn tainted() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/tainted")
        .map_err(|err| format!("/proc/sys/kernel/tainted: {err}"))?;
    text.trim()
        .parse()
        .map_err(|err| format!("/proc/sys/kernel/tainted '{}': {err}", text.trim()))
}
