//! The publishable crates package and build as crates.io would receive them.
//!
//! `cargo package` with the published crates at once packages each, then builds each from its
//! `.crate` in dependency order, `luo-sysfs-abi` and `luo-user` against the just-packaged
//! `luo-state` (and `luo-sysfs-abi`) instead of crates.io: what `cargo publish --dry-run`
//! checks, for crates that are not on crates.io yet. It needs the crates.io index (reachable
//! here and in CI). `--locked`: the builds use the versions Cargo.lock pins. `--allow-dirty`:
//! a developer's uncommitted changes are packaged as they are, which is what they test.

use std::process::Command;

use crate::build::cache;
use crate::run::{self, Result};

/// The crates published to crates.io, in dependency order.
pub const PUBLISHED: [&str; 4] = ["luo-state", "luo-sysfs-abi", "luo-user", "luoctl"];

/// Packages and verifies every published crate.
pub fn run() -> Result {
    run::step("cargo package (the published crates, each built from its .crate)");
    let mut cmd = Command::new("cargo");
    cmd.arg("package");
    for name in PUBLISHED {
        cmd.args(["-p", name]);
    }
    cmd.args(["--locked", "--allow-dirty"])
        .current_dir(cache::workspace());
    run::run(&mut cmd)
}
