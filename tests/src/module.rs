//! Loading and unloading `luo.ko` in the guest.

use std::path::Path;
use std::process::Command;

/// `insmod KO ARGS...`, with the tool's message on failure.
pub fn insmod(ko: &Path, args: &[&str]) -> Result<(), String> {
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
pub fn load_with_selftest(ko: &Path) -> Result<(), String> {
    mount_debugfs()?;
    insmod(ko, &["selftest=1"])
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
