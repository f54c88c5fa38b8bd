//! The kernel source: the installed `linux-source` package, extracted into the cache.

use std::path::PathBuf;
use std::process::Command;

use crate::build::{cache, setup};
use crate::run::{self, Result};

/// The extracted source of the installed `linux-source` package, re-extracted when the
/// package version changes.
pub fn source_tree() -> Result<PathBuf> {
    setup::packages()?;
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).ok_or_else(|| {
        format!(
            "{} is not installed; run `cargo xtask setup`",
            setup::KERNEL_SOURCE_PACKAGE
        )
    })?;
    let parent = cache::dir("kernel")?;
    let src = parent.join(setup::KERNEL_SOURCE_PACKAGE);
    let stamp = parent.join(format!(".{}.extracted", setup::KERNEL_SOURCE_PACKAGE));
    if std::fs::read_to_string(&stamp).is_ok_and(|v| v == version) && src.join("Makefile").is_file()
    {
        return Ok(src);
    }
    if src.exists() {
        std::fs::remove_dir_all(&src)
            .map_err(|err| format!("cannot remove {}: {err}", src.display()))?;
    }
    let tarball = format!("/usr/src/{}.tar.xz", setup::KERNEL_SOURCE_PACKAGE);
    run::run_logged(
        "extract the kernel source (about 40 s)",
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&parent),
        &cache::log("kernel-extract")?,
    )?;
    std::fs::write(&stamp, &version)
        .map_err(|err| format!("cannot write {}: {err}", stamp.display()))?;
    Ok(src)
}
