//! The host check `scripts`: every guest script under `tests/guest-scripts/` parses with the
//! guest's `sh` and passes shellcheck.
//!
//! The guests run the host's `/bin/sh` (Debian's dash) over 9p, so `sh -n` here is the parser
//! the guest uses; a syntax error would otherwise surface only minutes later, in a guest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{cache, setup};
use crate::run::{self, Result};

/// Where the guest scripts are, under the workspace.
const DIR: &str = "tests/guest-scripts";

/// Runs `sh -n` on each script, then shellcheck on all of them at once.
pub fn check() -> Result {
    run::step("guest scripts: sh -n and shellcheck");
    setup::packages()?;
    let workspace = cache::workspace();
    // Relative to the workspace, so each finding names a short path.
    let scripts: Vec<PathBuf> = find(&workspace.join(DIR))?
        .into_iter()
        .map(|path| {
            path.strip_prefix(&workspace)
                .map_or_else(|_| path.clone(), Path::to_path_buf)
        })
        .collect();
    if scripts.is_empty() {
        return Err(format!("no guest script under {DIR}"));
    }
    for script in &scripts {
        run::run(
            Command::new("sh")
                .arg("-n")
                .arg(script)
                .current_dir(&workspace),
        )?;
    }
    // The scripts have no shebang (the runner hands them to `sh`), so the dialect is given
    // here; the default severity (style) keeps every note, and a script that needs an
    // exception says so with a `# shellcheck disable=...` line and its reason.
    run::run(
        Command::new("shellcheck")
            .arg("--shell=sh")
            .args(&scripts)
            .current_dir(&workspace),
    )?;
    eprintln!("    {} scripts: ok", scripts.len());
    Ok(())
}

/// The `*.sh` files under `dir`, at any depth, sorted so the order is stable.
fn find(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|err| format!("{}: {err}", dir.display()))?
            .path();
        if path.is_dir() {
            found.extend(find(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "sh") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_scripts_the_scenarios_include() {
        let scripts = find(&cache::workspace().join(DIR)).unwrap();
        for name in [
            "observer.sh",
            "demo.sh",
            "builtin-liveupdate.sh",
            "mainline-refusal.sh",
            "liveupdate/preamble.sh",
            "liveupdate/two-updates.sh",
        ] {
            assert!(
                scripts.iter().any(|path| path.ends_with(name)),
                "{name} not among {scripts:?}"
            );
        }
    }
}
