//! Mainline's liveupdate selftests (`tools/testing/selftests/liveupdate/`), built unchanged
//! from the installed 7.3 source against its own uapi headers, and cached by the source's
//! version; the headers serve the check of luo-user's session ABI too.

use std::path::PathBuf;
use std::process::Command;

use crate::build::{cache, setup, sources};
use crate::run::{self, Result};

/// Mainline's selftest programs this project runs.
const SELFTESTS: &[&str] = &["liveupdate", "luo_kexec_simple", "luo_multi_session"];

/// Builds mainline's liveupdate selftests (cached), returning their directory.
pub fn ensure() -> Result<PathBuf> {
    // The cache key is the source package's version, so the package comes first.
    setup::packages()?;
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    let out = cache::dir("selftests-liveupdate")?.join(cache::key(&[version.as_bytes()]));
    if SELFTESTS.iter().all(|name| out.join(name).is_file()) {
        return Ok(out);
    }
    run::step("mainline's liveupdate selftests, from the 7.3 source");
    let source = sources::source_tree()?;
    let headers = out.join("headers");
    std::fs::create_dir_all(&headers)
        .map_err(|err| format!("cannot create {}: {err}", headers.display()))?;
    let log = cache::log("selftests-liveupdate")?;
    run::run_logged(
        "the uapi headers (make headers_install)",
        Command::new("make")
            .arg("-C")
            .arg(&source)
            .arg(format!("O={}", out.join("headers-build").display()))
            .arg(format!("INSTALL_HDR_PATH={}", headers.display()))
            .arg("headers_install"),
        &log,
    )?;
    run::run_logged(
        "make -C tools/testing/selftests/liveupdate",
        Command::new("make")
            .arg("-C")
            .arg(source.join("tools/testing/selftests/liveupdate"))
            .arg(format!("OUTPUT={}", out.display()))
            .arg(format!(
                "KHDR_INCLUDES=-isystem {}",
                headers.join("include").display()
            )),
        &log,
    )?;
    for name in SELFTESTS {
        if !out.join(name).is_file() {
            return Err(format!(
                "the selftests built no {name} in {} (log: {})",
                out.display(),
                log.display()
            ));
        }
    }
    Ok(out)
}
