//! Where Kbuild builds the workspace's kernel modules.
//!
//! make splits words on whitespace, and Kbuild resolves `M=` with `realpath` (so a symlink
//! does not hide the real path either): it cannot build a module whose directory has a space
//! in its path. A workspace behind such a path has its kernel sources mirrored into the cache,
//! with the same layout (luo's `#[path]` modules name the shared crates' files relatively),
//! and built there.

use std::path::{Path, PathBuf};

use crate::build::cache;
use crate::run::Result;

/// The directories a module build reads, relative to the workspace: the modules and the
/// shared crates' sources that luo compiles in place.
const SOURCES: &[&str] = &[
    "luo-kmod",
    "luo-state/src",
    "luo-sysfs-abi/src",
    "tests/kmod-squatter",
];

/// The directory to give Kbuild as `M=` for `module`, a directory of [`SOURCES`] in the
/// workspace: that directory, or its mirror when the workspace's path has whitespace.
pub fn module_dir(module: &str) -> Result<PathBuf> {
    let workspace = cache::workspace();
    if !workspace.to_string_lossy().contains(char::is_whitespace) {
        return Ok(workspace.join(module));
    }
    let mirror =
        cache::dir("kbuild")?.join(cache::key(&[workspace.as_os_str().as_encoded_bytes()]));
    for dir in SOURCES {
        mirror_tree(&workspace.join(dir), &mirror.join(dir))?;
    }
    Ok(mirror.join(module))
}

/// Copies the build inputs of `from` (Kbuild files, Rust and C sources) to `to`, writing only
/// the files whose content changed: make decides what to rebuild by modification times, and an
/// unchanged file that looked new would rebuild everything, while a stale object copied in
/// could look up to date.
fn mirror_tree(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|err| format!("cannot create {}: {err}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|err| format!("cannot list {}: {err}", from.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|err| format!("cannot list {}: {err}", from.display()))?
            .path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            mirror_tree(&path, &target)?;
        } else if is_build_input(&path) {
            let text = std::fs::read(&path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            if std::fs::read(&target).ok().as_ref() != Some(&text) {
                std::fs::write(&target, &text)
                    .map_err(|err| format!("cannot write {}: {err}", target.display()))?;
            }
        }
    }
    Ok(())
}

/// A file Kbuild reads: `Kbuild`, or a Rust or C source or header (not a build output).
fn is_build_input(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "Kbuild")
        || path
            .extension()
            .is_some_and(|ext| ext == "rs" || ext == "c" || ext == "h")
}
