//! Loading and unloading `luo.ko` in the guest, or, when the kernel has luo built in
//! (`--ko builtin`), checking that it is there.

use std::path::Path;
use std::process::Command;

use luo_sysfs_abi::path::{SELFTEST_PATH, STATE_PATH};

/// What `--ko` names when luo is built into the kernel: nothing to load, and the test hook is
/// on when the kernel command line has `luo.selftest=1`.
pub const BUILTIN: &str = "builtin";

/// Whether `ko` names the built-in rather than a module file.
pub fn is_builtin(ko: &Path) -> bool {
    ko == Path::new(BUILTIN)
}

/// `insmod KO ARGS...`, with the tool's message on failure.
pub fn insmod(ko: &Path, args: &[&str]) -> Result<(), String> {
    if is_builtin(ko) {
        return Err("luo is built into this kernel: there is no module to insmod".to_owned());
    }
    run(Command::new("insmod").arg(ko).args(args), "insmod")
}

/// `rmmod luo`.
pub fn rmmod() -> Result<(), String> {
    rmmod_named("luo")
}

/// `rmmod NAME`.
pub fn rmmod_named(name: &str) -> Result<(), String> {
    run(Command::new("rmmod").arg(name), "rmmod")
}

/// Loads the module with the test hook enabled and debugfs mounted, as most tests want.
///
/// With luo built in, there is nothing to load: this checks that the state file exists from
/// boot and that the kernel command line enabled the test hook.
pub fn load_with_selftest(ko: &Path) -> Result<(), String> {
    mount_debugfs()?;
    if !is_builtin(ko) {
        return insmod(ko, &["selftest=1"]);
    }
    for (path, missing) in [
        (STATE_PATH, "is luo built into this kernel?"),
        (SELFTEST_PATH, "boot with luo.selftest=1"),
    ] {
        std::fs::metadata(path).map_err(|err| format!("built-in luo: {path}: {err}; {missing}"))?;
    }
    Ok(())
}

/// Mounts debugfs at its usual place unless it is there already.
pub fn mount_debugfs() -> Result<(), String> {
    let mounts =
        std::fs::read_to_string("/proc/mounts").map_err(|err| format!("/proc/mounts: {err}"))?;
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("debugfs"))
    {
        return Ok(());
    }
    run(
        Command::new("mount").args(["-t", "debugfs", "none", "/sys/kernel/debug"]),
        "mount debugfs",
    )
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|err| format!("cannot run {what}: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
