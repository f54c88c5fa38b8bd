//! `cargo xtask kernel`: the guest kernel, configured from tinyconfig plus the fragments in
//! `luo-kmod/kconfig/`, built once per (source version, fragments, rustc, bindgen) and cached;
//! and the build of a tree with the in-tree series applied and luo built in, cached by the
//! series' content as well (the series itself, and `--in-tree`, are `series::tree`'s).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{cache, setup, sources};
use crate::run::{self, Result};

/// The fragments merged onto tinyconfig, in order. The debug fragment (lockdep, sleeping in
/// atomic context) is always on: the tests want it, and one kernel keeps a cold run short.
/// The fault injection of the module's init is needed only where the module is loaded, so it
/// lives in this kernel and not in a third one.
const FRAGMENTS: &[&str] = &[
    "luo-kmod/kconfig/base.config",
    "luo-kmod/kconfig/debug.config",
    "luo-kmod/kconfig/fault-injection.config",
];

/// The fragments of the in-tree kernel: the same base, luo built in, and what systemd as PID 1
/// needs (the systemd guest runs the built-in flavours).
pub const IN_TREE_FRAGMENTS: &[&str] = &[
    "luo-kmod/kconfig/base.config",
    "luo-kmod/kconfig/debug.config",
    "luo-kmod/kconfig/systemd.config",
    "luo-kmod/kconfig/in-tree.config",
];

/// A built kernel: the `O=` directory, which is also what `make -C` and `vng --run` take.
pub struct Kernel {
    /// The build directory.
    pub build: PathBuf,
}

/// The kernel named by `KDIR`, or ours, built if the cache does not hold it yet.
pub fn ensure() -> Result<Kernel> {
    if let Some(kdir) = std::env::var_os("KDIR") {
        let build = PathBuf::from(kdir);
        if !build.join("Makefile").is_file() {
            return Err(format!(
                "KDIR={} is not a kernel build directory (no Makefile)",
                build.display()
            ));
        }
        return Ok(Kernel { build });
    }
    setup::run()?;
    run::step("kernel");
    let src = sources::source_tree()?;
    let build = build_dir()?;
    let _lock = lock(&build)?;
    let done = build.join(".luo-built");
    if done.is_file() && build.join("arch/x86/boot/bzImage").is_file() {
        eprintln!("    cached: {}", build.display());
        link_current(&build)?;
        return Ok(Kernel { build });
    }
    eprintln!("    building in {}", build.display());
    configure(&src, &build, FRAGMENTS, FRAGMENTS)?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&src)
        .arg(format!("O={}", build.display()))
        .arg(format!("-j{jobs}"))
        .arg("all");
    setup::kernel_build_env(&mut make)?;
    run::run_logged(
        "make all (about 6 to 10 minutes on 2 cores)",
        &mut make,
        &cache::log("kernel-build")?,
    )?;
    std::fs::write(&done, "").map_err(|err| format!("cannot write {}: {err}", done.display()))?;
    link_current(&build)?;
    Ok(Kernel { build })
}

/// Points `build-current` at `build`: the default `KDIR` of `luo-kmod/Makefile`, so a plain
/// `make` in `luo-kmod/` builds against the kernel the tests use.
fn link_current(build: &Path) -> Result {
    let link = cache::root().join("kernel/build-current");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(build, &link).map_err(|err| {
        format!(
            "cannot link {} to {}: {err}",
            link.display(),
            build.display()
        )
    })
}

/// A tree with the in-tree series applied, and what its build must know of the series.
pub struct Patched<'a> {
    /// The pristine tree with the series applied.
    pub tree: &'a Path,
    /// What the series changes: with the fragments, it keys the build.
    pub diffs: &'a [u8],
    /// Paths (or the start of paths) of the series' files: a warning about one fails the build.
    pub files: &'a [&'a str],
    /// The objects compiled from those files, relative to the build directory.
    pub objects: &'a [&'a str],
}

/// Builds `patched.tree` with the in-tree fragments and `CLIPPY=1`; a warning in the series'
/// Rust files fails the build. Never touches `build-current`, which stays the out-of-tree
/// module's kernel.
pub fn build_in_tree(patched: &Patched) -> Result<Kernel> {
    let build = inputs_dir(
        "build-in-tree",
        IN_TREE_FRAGMENTS,
        &[patched.diffs.to_vec()],
    )?;
    let _lock = lock(&build)?;
    let done = build.join(".luo-built");
    if done.is_file() && build.join("arch/x86/boot/bzImage").is_file() {
        eprintln!("    cached: {}", build.display());
        return Ok(Kernel { build });
    }
    seed_from_previous(&build)?;
    eprintln!("    building in {}", build.display());
    configure(patched.tree, &build, IN_TREE_FRAGMENTS, IN_TREE_FRAGMENTS)?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log = cache::log("kernel-build-in-tree")?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(patched.tree)
        .arg(format!("O={}", build.display()))
        .arg(format!("-j{jobs}"))
        .arg("CLIPPY=1")
        .arg("all");
    setup::kernel_build_env(&mut make)?;
    run::run_logged(
        "make CLIPPY=1 all (about 10 minutes on 2 cores)",
        &mut make,
        &log,
    )?;
    if let Err(err) = check_series_warnings(&log, patched.files) {
        // make would not compile them again, and a second run would pass without linting.
        for object in patched.objects {
            let _ = std::fs::remove_file(build.join(object));
        }
        return Err(err);
    }
    std::fs::write(&done, "").map_err(|err| format!("cannot write {}: {err}", done.display()))?;
    Ok(Kernel { build })
}

/// Holds `BUILD.lock` exclusively until dropped: two runs (a developer's and a clone's, or two
/// worktrees on one cache) must never configure or build one directory at once, and the second
/// waits for the first's result instead. The in-tree series' git tree is locked the same way.
pub fn lock(build: &Path) -> Result<std::fs::File> {
    let path = build.with_extension("lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| format!("cannot open {}: {err}", path.display()))?;
    use rustix::fs::{FlockOperation, flock};
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        eprintln!(
            "    another run is building {}; waiting for it",
            build.display()
        );
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|err| format!("cannot lock {}: {err}", path.display()))?;
    }
    Ok(file)
}

/// Starts a new in-tree build from a copy of the newest finished one, when `build` does not
/// exist yet and one does: the series changes with every edit of the module, and Kbuild then
/// rebuilds what the changed files and options reach (minutes) instead of the whole kernel.
/// Both builds come from the same git tree, where `series::tree::apply` rewrites only the series'
/// files, so their timestamps tell make what changed. A cold cache has nothing to copy.
fn seed_from_previous(build: &Path) -> Result {
    if build.exists() {
        return Ok(());
    }
    let parent = build.parent().ok_or("a build directory has a parent")?;
    let newest = std::fs::read_dir(parent)
        .map_err(|err| format!("cannot list {}: {err}", parent.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("build-in-tree-"))
        })
        .filter_map(|path| {
            let built = std::fs::metadata(path.join(".luo-built")).ok()?;
            Some((built.modified().ok()?, path))
        })
        .max();
    let Some((_, previous)) = newest else {
        return Ok(());
    };
    run::run_logged(
        &format!("copy the previous in-tree build ({})", previous.display()),
        Command::new("cp").arg("-a").arg(&previous).arg(build),
        &cache::log("kernel-seed")?,
    )?;
    let stale = build.join(".luo-built");
    std::fs::remove_file(&stale).map_err(|err| format!("cannot remove {}: {err}", stale.display()))
}

/// Fails when the build log holds a compiler or clippy warning about a file of the series.
/// Warnings about the rest of the tree are the tree's; they are counted, not refused.
pub fn check_series_warnings(log: &Path, files: &[&str]) -> Result {
    let text = std::fs::read_to_string(log)
        .map_err(|err| format!("cannot read {}: {err}", log.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let ours = |line: &str| files.iter().any(|file| line.contains(file));
    let mut series = Vec::new();
    let mut others = 0;
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("warning:") && !line.contains("error:") {
            continue;
        }
        // rustc names the file on the line after the message (`--> path:line:col`).
        let block = &lines[i..lines.len().min(i + 3)];
        if block.iter().any(|l| ours(l)) {
            series.push(block.join("\n"));
        } else {
            others += 1;
        }
    }
    if others > 0 {
        eprintln!("    note: {others} warnings outside the series' files (the tree's own)");
    }
    if series.is_empty() {
        eprintln!("    CLIPPY=1: no warning in the series' files");
        Ok(())
    } else {
        Err(format!(
            "warnings in the series' files (full log: {}):\n{}",
            log.display(),
            series.join("\n")
        ))
    }
}

/// Whether the fragment line `wanted` holds in `config`, a `.config`: `CONFIG_X=V` is there as
/// is; `# CONFIG_X is not set` means no `CONFIG_X=` line (an option whose dependencies are off
/// has no line at all). Other lines are comments.
fn survived(config: &str, wanted: &str) -> bool {
    if wanted.starts_with("CONFIG_") {
        return config.lines().any(|line| line == wanted);
    }
    match wanted
        .strip_prefix("# ")
        .and_then(|rest| rest.strip_suffix(" is not set"))
    {
        Some(option) if option.starts_with("CONFIG_") => {
            let set = format!("{option}=");
            !config.lines().any(|line| line.starts_with(&set))
        }
        _ => true,
    }
}

/// The build directory for the current inputs of the out-of-tree module's kernel.
fn build_dir() -> Result<PathBuf> {
    inputs_dir("build", FRAGMENTS, &[])
}

/// A build directory `PREFIX-KEY`, keyed by the source version, rustc, bindgen, the fragments'
/// content and `extra`.
pub fn inputs_dir(prefix: &str, fragments: &[&str], extra: &[Vec<u8>]) -> Result<PathBuf> {
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    let rustc = run::output(Command::new("rustc").arg("-vV"))?;
    let bindgen =
        run::output(Command::new(setup::tools_dir()?.join("bin/bindgen")).arg("--version"))?;
    let mut inputs = vec![
        version.into_bytes(),
        rustc.into_bytes(),
        bindgen.into_bytes(),
    ];
    for fragment in fragments {
        let path = cache::workspace().join(fragment);
        inputs.push(
            std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?,
        );
    }
    inputs.extend(extra.iter().cloned());
    let parts: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    Ok(cache::root()
        .join("kernel")
        .join(format!("{prefix}-{}", cache::key(&parts))))
}

/// Configures `build` from `src`: tinyconfig, then `fragments` merged in order, then
/// `olddefconfig`; every option of the fragments in `checked` must have survived.
pub fn configure(src: &Path, build: &Path, fragments: &[&str], checked: &[&str]) -> Result {
    std::fs::create_dir_all(build)
        .map_err(|err| format!("cannot create {}: {err}", build.display()))?;
    let log = cache::log("kernel-config")?;
    let make = |target: &str| -> Result<Command> {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(src)
            .arg(format!("O={}", build.display()))
            .arg(target);
        setup::kernel_build_env(&mut cmd)?;
        Ok(cmd)
    };
    run::run_logged("make tinyconfig", &mut make("tinyconfig")?, &log)?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge
        .current_dir(src)
        .args(["-m", "-O"])
        .arg(build)
        .arg(build.join(".config"));
    for fragment in fragments {
        merge.arg(cache::workspace().join(fragment));
    }
    run::run_logged("merge the config fragments", &mut merge, &log)?;
    run::run_logged("make olddefconfig", &mut make("olddefconfig")?, &log)?;
    run::run_logged("make rustavailable", &mut make("rustavailable")?, &log)?;
    verify_config(build, checked)
}

/// Every option a fragment asks for must have survived `olddefconfig`: one that did not has an
/// unmet dependency (or, for one turned off, another option selects it), and the kernel would
/// build without it, silently.
fn verify_config(build: &Path, fragments: &[&str]) -> Result {
    let config_path = build.join(".config");
    let config = std::fs::read_to_string(&config_path)
        .map_err(|err| format!("cannot read {}: {err}", config_path.display()))?;
    let mut lost = Vec::new();
    for fragment in fragments {
        let path = cache::workspace().join(fragment);
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        for wanted in text.lines() {
            if !survived(&config, wanted) {
                lost.push(format!("{wanted} (from {fragment})"));
            }
        }
    }
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "these options did not survive olddefconfig (a dependency is off): {}; see {}",
            lost.join(", "),
            config_path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::survived;

    const CONFIG: &str =
        "CONFIG_BUG=y\n# CONFIG_DEBUG_FS is not set\nCONFIG_KEXEC_HANDOVER_DEBUGFS=y\n";

    #[test]
    fn an_option_asked_on_must_be_there_as_asked() {
        assert!(survived(CONFIG, "CONFIG_BUG=y"));
        assert!(!survived(CONFIG, "CONFIG_DEBUG_FS=y"));
        assert!(!survived(CONFIG, "CONFIG_BUG=m"));
    }

    #[test]
    fn an_option_asked_off_must_have_no_value() {
        assert!(survived(CONFIG, "# CONFIG_DEBUG_FS is not set"));
        assert!(!survived(CONFIG, "# CONFIG_BUG is not set"));
        assert!(
            survived(CONFIG, "# CONFIG_KEXEC_HANDOVER is not set"),
            "an option without a line is off, whatever longer names are on"
        );
        assert!(survived(CONFIG, "# a comment"));
    }
}
