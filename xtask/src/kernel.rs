//! `cargo xtask kernel`: the guest kernel, configured from tinyconfig plus the fragments in
//! `luo-kmod/kconfig/`, built once per (source version, fragments, rustc, bindgen) and cached.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache;
use crate::run::{self, Result};
use crate::setup;

/// The fragments merged onto tinyconfig, in order. The debug fragment (lockdep, sleeping in
/// atomic context) is always on: the tests want it, and one kernel keeps a cold run short.
const FRAGMENTS: &[&str] = &[
    "luo-kmod/kconfig/base.config",
    "luo-kmod/kconfig/debug.config",
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
    let src = source_tree()?;
    let build = build_dir()?;
    let done = build.join(".luo-built");
    if done.is_file() && build.join("arch/x86/boot/bzImage").is_file() {
        eprintln!("    cached: {}", build.display());
        link_current(&build)?;
        return Ok(Kernel { build });
    }
    eprintln!("    building in {}", build.display());
    configure(&src, &build)?;
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

/// The extracted source of the installed `linux-source` package, re-extracted when the
/// package version changes.
fn source_tree() -> Result<PathBuf> {
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

/// The build directory for the current inputs.
fn build_dir() -> Result<PathBuf> {
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    let rustc = run::output(Command::new("rustc").arg("-vV"))?;
    let bindgen =
        run::output(Command::new(setup::tools_dir()?.join("bin/bindgen")).arg("--version"))?;
    let mut inputs = vec![
        version.into_bytes(),
        rustc.into_bytes(),
        bindgen.into_bytes(),
    ];
    for fragment in FRAGMENTS {
        let path = cache::workspace().join(fragment);
        inputs.push(
            std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?,
        );
    }
    let parts: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    Ok(cache::root()
        .join("kernel")
        .join(format!("build-{}", cache::key(&parts))))
}

fn configure(src: &Path, build: &Path) -> Result {
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
    for fragment in FRAGMENTS {
        merge.arg(cache::workspace().join(fragment));
    }
    run::run_logged("merge the config fragments", &mut merge, &log)?;
    run::run_logged("make olddefconfig", &mut make("olddefconfig")?, &log)?;
    run::run_logged("make rustavailable", &mut make("rustavailable")?, &log)?;
    verify_config(build)
}

/// Every option a fragment asks for must have survived `olddefconfig`: one that did not has an
/// unmet dependency, and the kernel would build without it, silently.
fn verify_config(build: &Path) -> Result {
    let config_path = build.join(".config");
    let config = std::fs::read_to_string(&config_path)
        .map_err(|err| format!("cannot read {}: {err}", config_path.display()))?;
    let have: Vec<&str> = config.lines().collect();
    let mut lost = Vec::new();
    for fragment in FRAGMENTS {
        let path = cache::workspace().join(fragment);
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        for wanted in text.lines().filter(|l| l.starts_with("CONFIG_")) {
            if !have.contains(&wanted) {
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
