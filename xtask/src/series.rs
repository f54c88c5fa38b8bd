//! The in-tree series against Linux 7.3, generated from this repository ([`generate`]), applied
//! to the pristine tree and built with luo built in ([`tree`]), and checked ([`check`]).
//!
//! The series carries no file written by hand twice. Every Rust file comes from the repository
//! at generation time: the sysfs abstraction (`luo-kmod/kernel/sysfs.rs`) becomes
//! `rust/kernel/sysfs.rs`; the module's files (`luo-kmod/src/`) and the shared files of
//! `luo-state` and `luo-sysfs-abi` that its `#[path]` modules name go, side by side, to
//! [`generate::TREE_DIR`]; the ABI document is `luo_sysfs_abi::write_abi_doc`'s output. Two
//! mechanical rewrites make them fit the tree ([`generate::in_tree_root`]): the `#[path]`
//! attributes go (the files now sit next to `luo.rs`, under the names the attributes gave
//! them), and the module's name for the abstraction, `kernel_sysfs`, becomes `kernel::sysfs`.
//!
//! The series is made in a scratch git repository that holds the pristine versions of the files
//! it edits (nothing else of the tree matters to `git format-patch`), one commit per patch.
//! [`tree`] applies it with `git am` to a git repository of the whole pristine tree, and
//! [`check`] runs `checkpatch.pl --strict` on it and builds that tree with the option on and
//! `CLIPPY=1`. The guest tests against the built-in run in the layer above (the scenarios),
//! on the kernel this layer builds.

use std::path::Path;

use crate::run::Result;

pub mod check;
pub mod generate;
mod git;
pub mod matrix;
pub mod tree;

/// The file at `path`, as text.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

/// Writes `text` to `path`, creating its directory.
fn write(path: &Path, text: &str) -> Result {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}
