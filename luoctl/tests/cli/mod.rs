//! What the `luoctl` tests share: the command with a clean environment, state files in
//! temporary directories, and hook scripts.

#![allow(dead_code)] // each test file uses part of this module

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use luo_user::State;
use tempfile::TempDir;

/// A bound for every run, so a broken luoctl fails the test instead of hanging it.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The variables luoctl reads, removed so the caller's environment cannot leak in.
pub const LUO_VARIABLES: [&str; 9] = [
    "LUO_STATE_FILE",
    "LUO_GENERATION_FILE",
    "LUO_DEVICE",
    "LUO_INTERVAL",
    "LUO_HOOKS_DIR",
    "LUO_DEBUGFS",
    "LUO_PROC_CMDLINE",
    "NOTIFY_SOCKET",
    "NO_COLOR",
];

/// `luoctl` with a run limit and none of its variables from the caller.
pub fn luoctl() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("luoctl");
    cmd.timeout(RUN_LIMIT);
    for name in LUO_VARIABLES {
        cmd.env_remove(name);
    }
    cmd
}

/// `luoctl` as a `std::process::Command`, for runs that are read while they go on.
pub fn luoctl_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("luoctl"));
    for name in LUO_VARIABLES {
        cmd.env_remove(name);
    }
    cmd
}

/// `luoctl` copied into `dir` and run from there, as a `std::process::Command`, for a run as
/// another user: the checkout's binary may lie below a directory only its owner may enter
/// (root's home is 0700), and then that user could not start it at all. `dir` must be open to
/// that user.
pub fn luoctl_copy_in(dir: &Path) -> std::process::Command {
    let copy = dir.join("luoctl");
    fs::copy(assert_cmd::cargo::cargo_bin!("luoctl"), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new(copy);
    for name in LUO_VARIABLES {
        cmd.env_remove(name);
    }
    cmd
}

/// A directory with a state file holding what sysfs shows for `state`.
pub fn state_dir(state: State) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state");
    write_state(&path, state);
    (dir, path)
}

/// Rewrites `path` in place with what sysfs shows for `state`.
pub fn write_state(path: &Path, state: State) {
    fs::write(path, format!("{state}\n")).unwrap();
}

/// Writes an executable shell script.
pub fn script(path: &Path, body: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    // A rename, so no one can run it half-written (ETXTBSY).
    fs::rename(&tmp, path).unwrap();
}
