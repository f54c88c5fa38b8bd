//! The guests' init, `luo-guest-init`: built from the workspace once per xtask run and started
//! by the guest kernel straight from `target/` (the guest's root is the host's `/`).
//!
//! It is built optimised, statically linked and without debug information, in a target
//! directory of its own: loading it over 9p is part of every boot, and this build started in
//! about half the time of the plain debug build (0.3 to 0.9 s against 1.4 to 1.7 s under TCG
//! on a loaded host). The own target directory keeps these flags from rebuilding the
//! workspace's other crates.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::build::cache;
use crate::run::{self, Result};

/// The guest's target (QEMU runs `qemu-system-x86_64`); named so that the flags below apply
/// to the init only, not to build scripts.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// `-C target-feature=+crt-static -C strip=debuginfo`, in the form of
/// `CARGO_ENCODED_RUSTFLAGS` (which wins over any `RUSTFLAGS` of the caller).
const RUSTFLAGS: &str = "-C\x1ftarget-feature=+crt-static\x1f-C\x1fstrip=debuginfo";

/// Builds `luo-guest-init` the first time a guest boots in this process (the tests boot one
/// guest each: one `cargo build` is enough) and returns its path.
pub fn ensure() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<PathBuf> {
    let target_dir = cache::workspace().join("target/guest-init");
    run::run(
        Command::new("cargo")
            .args(["build", "--quiet", "--release"])
            .args(["-p", "luo-guest-init", "--bin", "luo-guest-init"])
            .args(["--target", TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS)
            .current_dir(cache::workspace()),
    )
    .map_err(|err| format!("cannot build the guests' init: {err}"))?;
    let path = target_dir.join(TARGET).join("release/luo-guest-init");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "cargo built luo-guest-init but {} is not there",
            path.display()
        ))
    }
}
