//! The publishable crates package and build as crates.io would receive them.
//!
//! `cargo package` with the published crates at once packages each, then builds each from its
//! `.crate` in dependency order, `luo-sysfs-abi` and `luo-user` against the just-packaged
//! `luo-state` (and `luo-sysfs-abi`) instead of crates.io: what `cargo publish --dry-run`
//! checks, for crates that are not on crates.io yet. It needs the crates.io index (reachable
//! here and in CI). `--locked`: the builds use the versions Cargo.lock pins. `--allow-dirty`:
//! a developer's uncommitted changes are packaged as they are, which is what they test.
//!
//! Cargo unpacks the just-packaged crates from its temporary registry into
//! `$CARGO_HOME/registry/src/-<hash of that registry's path>/`, and it reuses an unpacked crate
//! of the same name and version without looking at its contents. A checkout at a fixed path (as
//! in CI) would then build `luo-user` against an earlier commit's `luo-sysfs-abi`. So cargo
//! runs here with a Cargo home of this checkout's own, and the unpacked local crates are
//! removed from it before each run; crates from crates.io stay there, downloaded once.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::build::cache;
use crate::run::{self, Result};

/// The crates published to crates.io, in dependency order.
pub const PUBLISHED: [&str; 4] = ["luo-state", "luo-sysfs-abi", "luo-user", "luoctl"];

/// Packages and verifies every published crate.
pub fn run() -> Result {
    run::step("cargo package (the published crates, each built from its .crate)");
    let home = cache::scratch("cargo-package-home")?;
    forget_local_crates(&home)?;
    let mut cmd = Command::new("cargo");
    cmd.arg("package");
    for name in PUBLISHED {
        cmd.args(["-p", name]);
    }
    cmd.args(["--locked", "--allow-dirty"])
        .env("CARGO_HOME", &home)
        .current_dir(cache::workspace());
    run::run(&mut cmd)
}

/// Removes what cargo unpacked from local registries in the Cargo home `home`.
///
/// Cargo names a registry's unpack directory after the registry's host, then a hash; a local
/// registry has no host, so its directory's name starts with `-`. crates.io's does not.
fn forget_local_crates(home: &Path) -> Result {
    let src = home.join("registry/src");
    let entries = match fs::read_dir(&src) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot list {}: {e}", src.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", src.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b"-") {
            let path = entry.path();
            fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
