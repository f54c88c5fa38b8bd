//! The series applied to the pristine tree, and that tree built with luo built in:
//! `cargo xtask kernel --in-tree`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::kernel::{self, Kernel, Patched};
use crate::build::{cache, setup, sources};
use crate::run::{self, Result};
use crate::series::generate::{self, Series};
use crate::series::git::{Git, identity};

/// The kernel with the in-tree series applied and `CONFIG_LIVEUPDATE_SYSFS_API=y`: the series
/// regenerated from the repository and applied to the pristine tree with `git am`, then built
/// (unless the cache holds a build of the same series and inputs).
pub fn in_tree_kernel() -> Result<Kernel> {
    setup::run()?;
    let series = generate::generate(&generate::default_out())?;
    let _tree_lock = lock_tree()?;
    let tree = apply(&series)?;
    build(&series, &tree)
}

/// Holds the shared git tree until dropped. Every checkout applies its own series to the one
/// tree of the cache and builds from it: another checkout's `git am` in the middle of a build
/// would swap the sources under it, so an apply and the build that follows hold this lock
/// together, and another checkout waits.
pub fn lock_tree() -> Result<std::fs::File> {
    kernel::lock(&cache::dir("kernel")?.join("git-tree"))
}

/// The series' files, or the start of their paths, as the build log names them: the
/// abstraction and its C helpers, luo (under `kernel/liveupdate/luo_sysfs/`), and the observer
/// hook in mainline's `kernel/liveupdate/luo_*.c` and `include/linux/liveupdate.h`. A warning
/// about one of them fails the in-tree build.
pub const SERIES_FILES: &[&str] = &[
    generate::ABSTRACTION_PATH,
    generate::HELPERS_PATH,
    generate::TREE_DIR,
    "kernel/liveupdate/luo_",
    "include/linux/liveupdate.h",
];

/// The objects compiled from the series' files in the build directory: the kernel crate (which
/// holds `kernel::sysfs`), the C helpers (`rust/helpers/helpers.c` includes `sysfs.c`) and luo.
/// A build that finds a warning removes them, so that the next one compiles them again.
pub const RUST_OBJECTS: &[&str] = &[
    "rust/kernel.o",
    "rust/helpers/helpers.o",
    "kernel/liveupdate/luo_sysfs/luo.o",
];

/// Builds `tree`, the pristine tree with `series` applied, with `CLIPPY=1`; a warning in the
/// series' Rust files fails the build.
pub fn build(series: &Series, tree: &Path) -> Result<Kernel> {
    run::step(&format!(
        "kernel with the in-tree series (CONFIG_{}=y)",
        generate::OPTION
    ));
    kernel::build_in_tree(&Patched {
        tree,
        diffs: &series.diffs()?,
        files: SERIES_FILES,
        objects: RUST_OBJECTS,
    })
}

/// A git repository of the whole pristine tree, committed once per source package version,
/// with the series applied by `git am` on a fresh branch; returns the tree.
pub fn apply(series: &Series) -> Result<PathBuf> {
    let repo = pristine_repo()?;
    let git = Git::new(&repo, identity()?);
    // An earlier run may have stopped in the middle of `git am`; nothing to abort is fine.
    let _ = git.run(&["am", "--abort"]);
    git.run(&["checkout", "-q", "-f", "-B", "luo-series", "pristine"])?;
    git.run(&["clean", "-q", "-f", "-d"])?;
    let mut am = vec!["am", "-q", "--whitespace=error"];
    let patches: Vec<String> = series
        .patches
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    am.extend(patches.iter().map(String::as_str));
    git.run(&am).map_err(|err| {
        let _ = git.run(&["am", "--abort"]);
        format!("the series does not apply to the pristine tree: {err}")
    })?;
    eprintln!(
        "    git am: {} patches applied to the pristine tree in {}",
        series.patches.len(),
        repo.display()
    );
    Ok(repo)
}

/// The pristine tree as a git repository (tag `pristine`), made from the extracted source.
fn pristine_repo() -> Result<PathBuf> {
    let source = sources::source_tree()?;
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    let parent = cache::dir("kernel")?;
    let repo = parent.join("git-tree");
    let stamp = parent.join(".git-tree.version");
    if std::fs::read_to_string(&stamp).is_ok_and(|v| v == version) && repo.join(".git").is_dir() {
        return Ok(repo);
    }
    if repo.exists() {
        std::fs::remove_dir_all(&repo)
            .map_err(|err| format!("cannot remove {}: {err}", repo.display()))?;
    }
    let log = cache::log("kernel-git")?;
    run::run_logged(
        "copy the pristine tree for git (about 20 s)",
        Command::new("cp").arg("-a").arg(&source).arg(&repo),
        &log,
    )?;
    let git = Git::new(&repo, identity()?);
    git.run(&["init", "-q", "-b", "pristine-branch"])?;
    git.run(&["config", "gc.auto", "0"])?;
    // `-f`: the tree's own .gitignore must not hide a file of the package from the repository.
    run::run_logged(
        "git add the pristine tree (about 2 minutes)",
        &mut git.command(&["add", "-A", "-f"]),
        &log,
    )?;
    git.commit(&format!(
        "Linux {} (Debian linux-source-7.3 {version})",
        generate::tree_version(&source)?
    ))?;
    git.run(&["tag", "-f", "pristine"])?;
    std::fs::write(&stamp, &version)
        .map_err(|err| format!("cannot write {}: {err}", stamp.display()))?;
    Ok(repo)
}
