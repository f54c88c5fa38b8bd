//! `cargo xtask module`: `luo.ko` built by Kbuild against the guest kernel (or `KDIR`), with
//! the kernel's clippy lints (`CLIPPY=1`) and the tree's rustfmt settings, warnings refused.

use std::path::PathBuf;
use std::process::Command;

use crate::build::kernel::{self, Kernel};
use crate::build::setup;
use crate::build::{cache, kbuild};
use crate::run::{self, Result};

/// The module's source directory in the workspace.
pub fn source_dir() -> PathBuf {
    cache::workspace().join("luo-kmod")
}

/// A built module and the kernel it was built for.
pub struct Module {
    /// The kernel build the module matches.
    pub kernel: Kernel,
    /// The path of `luo.ko`.
    pub ko: PathBuf,
}

/// Builds `luo.ko` (about 2 s) and checks lints and formatting.
pub fn ensure() -> Result<Module> {
    let kernel = kernel::ensure()?;
    run::step("module: luo.ko");
    let dir = kbuild::module_dir("luo-kmod")?;
    let log = cache::log("module")?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&kernel.build)
        .arg(format!("M={}", dir.display()))
        .arg("CLIPPY=1")
        // The project's tests use the test hook (`selftest=1`); production builds omit it.
        .arg("LUO_SELFTEST=y")
        .arg("modules");
    setup::kernel_build_env(&mut make)?;
    run::run_logged("make M=luo-kmod CLIPPY=1 LUO_SELFTEST=y", &mut make, &log)?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("warning")).collect();
    if !warnings.is_empty() {
        return Err(format!(
            "the module build has warnings (full log: {}):\n{}",
            log.display(),
            run::tail(&log, 60)
        ));
    }
    check_format(&kernel)?;
    let ko = dir.join("luo.ko");
    let size = std::fs::metadata(&ko)
        .map_err(|err| format!("{} was not built: {err}", ko.display()))?
        .len();
    eprintln!("    {} ({size} bytes)", ko.display());
    Ok(Module { kernel, ko })
}

/// The module's own Rust files and the kernel abstraction it carries (`src/` and `kernel/`).
pub fn rust_sources() -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in ["src", "kernel"] {
        let dir = source_dir().join(dir);
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
        files.extend(
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs")),
        );
    }
    files.sort();
    Ok(files)
}

/// The module's sources against the kernel tree's `.rustfmt.toml`.
fn check_format(kernel: &Kernel) -> Result {
    let source_tree = kernel.build.join("source");
    let config = source_tree.join(".rustfmt.toml");
    let files = rust_sources()?;
    let mut rustfmt = Command::new("rustfmt");
    rustfmt
        .args(["--check", "--edition", "2021", "--config-path"])
        .arg(&config)
        .args(&files);
    run::run(&mut rustfmt).map_err(|err| format!("{err}: luo-kmod is not formatted as the kernel tree wants; run rustfmt with --config-path {}", config.display()))
}

/// Builds `luo.ko` as a production build would (without `LUO_SELFTEST=y`, so without the test
/// hook) from a copy of its sources under `target/`, and returns its path.
pub fn build_production(kernel: &Kernel) -> Result<PathBuf> {
    let workspace = cache::workspace();
    let root = workspace.join("target/luo-kmod-production");
    for dir in [
        "luo-kmod/src",
        "luo-kmod/kernel",
        "luo-state/src",
        "luo-sysfs-abi/src",
    ] {
        let to = root.join(dir);
        std::fs::create_dir_all(&to).map_err(|err| format!("{}: {err}", to.display()))?;
        run::run(
            Command::new("cp")
                .arg("-rT")
                .arg(workspace.join(dir))
                .arg(&to),
        )?;
    }
    let dir = root.join("luo-kmod");
    std::fs::copy(source_dir().join("Kbuild"), dir.join("Kbuild"))
        .map_err(|err| format!("copying Kbuild: {err}"))?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&kernel.build)
        .arg(format!("M={}", dir.display()))
        .arg("modules");
    setup::kernel_build_env(&mut make)?;
    run::run_logged(
        "make M=luo-kmod (production)",
        &mut make,
        &cache::log("module-production")?,
    )?;
    Ok(dir.join("luo.ko"))
}

/// Builds the test module `liveupdate_squatter.ko` (it owns the misc device name luo needs)
/// against `kernel`, and returns its path.
pub fn build_squatter(kernel: &Kernel) -> Result<PathBuf> {
    let dir = kbuild::module_dir("tests/kmod-squatter")?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&kernel.build)
        .arg(format!("M={}", dir.display()))
        .arg("W=1")
        .arg("modules");
    setup::kernel_build_env(&mut make)?;
    run::run_logged(
        "make M=tests/kmod-squatter",
        &mut make,
        &cache::log("squatter")?,
    )?;
    Ok(dir.join("liveupdate_squatter.ko"))
}
