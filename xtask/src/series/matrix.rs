//! `cargo xtask test config-matrix`: the series' luo objects built under the configurations the
//! in-tree kernel does not have, which would otherwise first fail in someone else's tree.
//!
//! The in-tree kernel builds `LIVEUPDATE=y` with debugfs and KHO; [`CONFIGS`] names the rest.
//! Each is the in-tree kernel's fragments plus one of `luo-kmod/kconfig/matrix/`, in a build
//! directory of its own, and builds only what luo's objects need: `make prepare` (which builds
//! `rust/`, the kernel crate included, with this configuration's bindings) and
//! `kernel/liveupdate/luo_sysfs/`, with `CLIPPY=1`, not vmlinux. Without a link, a hand-written
//! declaration of a function the configuration leaves out would still compile, so the objects'
//! undefined symbols are checked against the prefixes of what each configuration turns off.
//!
//! A configuration that built is cached by its inputs (a marker holds the key of the series'
//! diffs; the directory's name keys the rest), so a warm run builds nothing and does not even
//! apply the series. A changed series rebuilds in the same directory: what it touches, not the
//! whole of `rust/`. The marker is read, the directory built and the marker written under the
//! directory's lock, so a run that finds another building there waits for its result.
//!
//! Locks are taken in one order: the configurations' build directories (in [`CONFIGS`]'
//! order), then the shared git tree ([`tree::lock_tree`]); the in-tree kernel takes the tree,
//! then its own build directory, which no matrix run takes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::build::kernel::{self, IN_TREE_FRAGMENTS};
use crate::build::{cache, setup};
use crate::run::{self, Result};
use crate::series::generate;
use crate::series::tree;

/// One configuration of the matrix.
pub struct Config {
    /// Its name, in the build directory's name and in messages.
    pub name: &'static str,
    /// The fragment merged after the in-tree kernel's, relative to the workspace; each of its
    /// options must survive `olddefconfig`.
    pub fragment: &'static str,
    /// Prefixes of the functions this configuration leaves out of the kernel: an undefined
    /// symbol of luo's objects that starts with one would fail the link.
    pub absent: &'static [&'static str],
}

impl Config {
    /// The fragments of its kernel, in order: the in-tree kernel's, then its own.
    fn fragments(&self) -> Vec<&'static str> {
        IN_TREE_FRAGMENTS
            .iter()
            .copied()
            .chain([self.fragment])
            .collect()
    }
}

/// The configurations. Both are needed: the test hook is built only with
/// debugfs, and luo's observer only with mainline's orchestrator, so a single configuration
/// without debugfs and without KHO would build neither `kho.rs`'s stubs beside the hook nor the
/// observer without debugfs.
pub const CONFIGS: &[Config] = &[
    Config {
        name: "no-debugfs",
        fragment: "luo-kmod/kconfig/matrix/no-debugfs.config",
        absent: &["debugfs_"],
    },
    Config {
        name: "no-kho",
        fragment: "luo-kmod/kconfig/matrix/no-kho.config",
        absent: &["kho_", "is_kho_boot", "liveupdate_"],
    },
];

/// The directory the series' luo objects are built in, relative to the build directory.
const OBJECTS_DIR: &str = generate::TREE_DIR;

/// Builds the series' luo objects under every configuration of [`CONFIGS`] that the cache does
/// not hold for the current series; reports every configuration that failed.
pub fn run() -> Result {
    setup::run()?;
    run::step("the series under the config matrix (no debugfs, no KHO)");
    let series = generate::generate(&generate::default_out())?;
    let key = cache::key(&[&series.diffs()?]);
    let mut pending = Vec::new();
    for config in CONFIGS {
        let build = build_dir(config)?;
        // Held from the marker's check to its write: another run building here writes the
        // marker only once it has built, and this run then finds it.
        let lock = kernel::lock(&build)?;
        if std::fs::read_to_string(build.join(MARKER)).is_ok_and(|done| done == key) {
            eprintln!("    {}: cached ({})", config.name, build.display());
        } else {
            pending.push((config, build, lock));
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let _tree_lock = tree::lock_tree()?;
    let patched = tree::apply(&series)?;
    let mut failures = Vec::new();
    for (config, build, _lock) in pending {
        let start = Instant::now();
        match build_config(config, &patched, &build) {
            Ok(()) => {
                write_marker(&build, &key)?;
                eprintln!("    {}: ok in {:.0?}", config.name, start.elapsed());
            }
            Err(err) => failures.push(format!(
                "the series does not build with the config {} ({}):\n{err}",
                config.name, config.fragment
            )),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// The file in a build directory that holds the key of the series last built there whole.
const MARKER: &str = ".luo-matrix-ok";

fn write_marker(build: &Path, key: &str) -> Result {
    let marker = build.join(MARKER);
    std::fs::write(&marker, key).map_err(|err| format!("cannot write {}: {err}", marker.display()))
}

/// The build directory of `config`: keyed by everything but the series, which changes with
/// every edit of luo and only rebuilds what it touches.
fn build_dir(config: &Config) -> Result<PathBuf> {
    kernel::inputs_dir(&format!("matrix-{}", config.name), &config.fragments(), &[])
}

/// Configures `build` for `config`, builds luo's objects in it, and checks the log and the
/// objects' symbols.
///
/// It configures each time: the series' Kconfig changes with the series, and Kbuild's own
/// update of a `.config` would give an option that became visible its default, not the value
/// the fragments ask for. The same `.config` again rebuilds nothing.
///
/// The caller holds the build directory's lock.
fn build_config(config: &Config, tree: &Path, build: &Path) -> Result {
    kernel::configure(tree, build, &config.fragments(), &[config.fragment])?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log = cache::log(&format!("kernel-matrix-{}", config.name))?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(tree)
        .arg(format!("O={}", build.display()))
        .arg(format!("-j{jobs}"))
        .arg("CLIPPY=1")
        .arg(format!("{OBJECTS_DIR}/"));
    setup::kernel_build_env(&mut make)?;
    if let Err(err) = run::run_logged(
        &format!("make CLIPPY=1 {OBJECTS_DIR}/ ({})", config.name),
        &mut make,
        &log,
    ) {
        return Err(match compiler_errors(&log) {
            Some(errors) => format!("{errors}\n(full log: {})", log.display()),
            None => err,
        });
    }
    let objects = build.join(OBJECTS_DIR);
    if let Err(err) = kernel::check_series_warnings(&log, tree::SERIES_FILES) {
        // make would not compile them again, and the next run would pass without the warning:
        // luo's objects, and those of the series' other files (the kernel crate, which holds
        // `kernel::sysfs`, and the C helpers), which `make prepare` builds.
        remove_objects(&objects)?;
        for object in tree::RUST_OBJECTS {
            remove_file(&build.join(object))?;
        }
        return Err(err);
    }
    // An option that is off builds an empty directory, without an error.
    if !objects.join("luo.o").is_file() {
        return Err(format!(
            "{OBJECTS_DIR}/luo.o was not built: is CONFIG_{} on in {}?",
            generate::OPTION,
            build.join(".config").display()
        ));
    }
    check_symbols(&objects, config.absent)
}

/// The compiler's errors in a failed build's log: from the first line that reports one, the
/// lines that follow it (rustc names the file and shows the code below its message), since the
/// log's tail is make's summary of which target failed.
fn compiler_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|line| line.starts_with("error") || line.contains(": error:"))?;
    Some(lines[first..lines.len().min(first + 40)].join("\n"))
}

/// Removes the objects (`*.o`, `*.a`) in `dir`, so that the next build compiles them again.
fn remove_objects(dir: &Path) -> Result {
    let entries =
        std::fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "o" || ext == "a") {
            std::fs::remove_file(&path)
                .map_err(|err| format!("cannot remove {}: {err}", path.display()))?;
        }
    }
    Ok(())
}

/// Removes `path` if it exists.
fn remove_file(path: &Path) -> Result {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {err}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Fails when an object in `dir` refers to a symbol that starts with one of `absent`: the
/// configuration has no such function, and the link of vmlinux, which this check skips, would
/// fail.
fn check_symbols(dir: &Path, absent: &[&str]) -> Result {
    let mut objects: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|err| format!("cannot list {}: {err}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "o"))
        .collect();
    objects.sort();
    let undefined = run::output(
        Command::new("nm")
            .args(["-u", "--format=just-symbols"])
            .args(&objects),
    )?;
    let missing = missing_symbols(&undefined, absent);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "luo's objects in {} refer to functions this configuration leaves out \
             (the link would fail): {}",
            dir.display(),
            missing.join(", ")
        ))
    }
}

/// The symbols of `nm -u` output (`FILE:` headers, blank lines and one symbol a line) that
/// start with one of `absent`, once each.
fn missing_symbols(undefined: &str, absent: &[&str]) -> Vec<String> {
    let mut missing: Vec<String> = undefined
        .lines()
        .map(str::trim)
        .filter(|symbol| absent.iter().any(|prefix| symbol.starts_with(prefix)))
        .map(str::to_owned)
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_has_a_fragment_and_its_own_name() {
        for config in CONFIGS {
            let path = cache::workspace().join(config.fragment);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.contains(&format!("CONFIG_{}=y", generate::OPTION)),
                "{} must keep the option on, or nothing of luo builds",
                config.fragment
            );
            assert_eq!(CONFIGS.iter().filter(|c| c.name == config.name).count(), 1);
        }
    }

    #[test]
    fn a_symbol_of_a_left_out_function_is_found_once() {
        let nm = "\nluo.o:\nmutex_lock\nkho_add_subtree\nkho_add_subtree\n\ndecls.o:\n";
        assert_eq!(
            missing_symbols(nm, &["kho_", "is_kho_boot"]),
            vec!["kho_add_subtree".to_owned()]
        );
        assert!(missing_symbols(nm, &["debugfs_"]).is_empty());
    }

    #[test]
    fn the_errors_are_the_compilers_not_makes_summary() {
        let dir = std::env::temp_dir().join(format!("luo-matrix-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("build.log");
        std::fs::write(
            &log,
            "  RUSTC   kernel/liveupdate/luo_sysfs/luo.o\n\
             error[E0425]: cannot find function `debugfs_create_dir` in crate `bindings`\n\
             \x20  --> kernel/liveupdate/luo_sysfs/selftest.rs:97:25\n\
             make[4]: *** [scripts/Makefile.build:1: luo.o] Error 1\n",
        )
        .unwrap();
        let errors = compiler_errors(&log).unwrap();
        assert!(errors.starts_with("error[E0425]: cannot find function `debugfs_create_dir`"));
        assert!(errors.contains("selftest.rs:97:25"));
        std::fs::write(&log, "make: *** [Makefile:1] Error 2\n").unwrap();
        assert!(compiler_errors(&log).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
