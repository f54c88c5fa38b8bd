//! `cargo xtask setup`: everything the kernel build and the guest need, installed from
//! Debian's archive and crates.io / PyPI, pinned, and repeatable on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::build::cache;
use crate::run::{self, Result};

/// bindgen-cli from crates.io: Debian's is too old in bookworm and needs a newer libc in trixie.
const BINDGEN_VERSION: &str = "0.72.1";
/// virtme-ng from PyPI: the kernel developers' runner, which boots our kernel with the host's
/// files shared over 9p.
const VIRTME_NG_VERSION: &str = "1.42";
/// The kernel source package (trixie-backports).
pub const KERNEL_SOURCE_PACKAGE: &str = "linux-source-7.3";

/// From bookworm. lz4, to compress the guest kernels; libclang 19, because bookworm's default
/// 14 is older than the kernel's minimum (17.0.1); udev, because virtme-ng's init (`vm --vng`
/// only) starts the host's udevd in the guest; systemd, which the test `systemd/standalone`
/// boots as the guest's PID 1 (a container image may lack it); kexec-tools, whose `kexec -e`
/// is how systemd-shutdown jumps; shellcheck, which the host check `scripts` runs over the guest
/// scripts.
const BOOKWORM_PACKAGES: &[&str] = &[
    "bc",
    "bison",
    "build-essential",
    "busybox-static",
    "cpio",
    "flex",
    "kexec-tools",
    "kmod",
    "libclang-19-dev",
    "libelf-dev",
    "libssl-dev",
    "lz4",
    "qemu-system-x86",
    "rsync",
    "shellcheck",
    "strace",
    "systemd",
    "udev",
    "xz-utils",
];

const APT_SOURCE: &str = "/etc/apt/sources.list.d/luo-trixie-backports.sources";
const APT_SOURCE_TEXT: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
const APT_PIN: &str = "/etc/apt/preferences.d/luo-trixie-backports";
// The blank line matters: without it apt reads one stanza and only the last pin counts.
const APT_PIN_TEXT: &str = "\
Package: *
Pin: release n=trixie
Pin-Priority: 90

Package: *
Pin: release n=trixie-backports
Pin-Priority: 90
";

/// Where the library source of `core` is, for `RUST_LIB_SRC`.
pub const RUST_LIB_SRC: &str = "/usr/lib/rustlib/src/rust/library";
/// Where libclang 19 is, for bindgen.
pub const LIBCLANG_PATH: &str = "/usr/lib/llvm-19/lib";

/// Installs whatever is missing; a no-op (a few dpkg queries) when all is there.
pub fn run() -> Result {
    run::step("setup: packages and tools");
    packages()?;
    install_bindgen()?;
    install_virtme_ng()?;
    Ok(())
}

/// Installs the Debian packages that are missing, once per xtask process: the host checks
/// that need one (shellcheck, the kernel source's headers) call this rather than [`run()`],
/// which also builds bindgen.
pub fn packages() -> Result {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let rustc = rustc_version()?;
    let mut wanted: Vec<String> = BOOKWORM_PACKAGES.iter().map(|p| (*p).to_owned()).collect();
    wanted.push(KERNEL_SOURCE_PACKAGE.to_owned());
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|p| installed_version(p).is_none())
        .collect();
    let rust_src_ok =
        installed_version("rust-src").is_some_and(|v| v.starts_with(&format!("{rustc}+")));
    if !missing.is_empty() || !rust_src_ok {
        apt_install(&rustc, &missing)?;
    } else {
        eprintln!("    apt packages: all present (rust-src matches rustc {rustc})");
    }
    DONE.store(true, Ordering::Relaxed);
    Ok(())
}

fn apt_install(rustc: &str, missing: &[&String]) -> Result {
    if !is_root() {
        return Err(format!(
            "these Debian packages are missing and installing them needs root: {}; \
             run `sudo cargo xtask setup` once, or install them yourself",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    write_if_changed(Path::new(APT_SOURCE), APT_SOURCE_TEXT)?;
    write_if_changed(Path::new(APT_PIN), APT_PIN_TEXT)?;
    run::run_logged(
        "apt-get update",
        Command::new("apt-get").arg("update"),
        &cache::log("apt-update")?,
    )?;
    let rust_src = rust_src_candidate(rustc)?;
    let mut apt = Command::new("apt-get");
    apt.env("DEBIAN_FRONTEND", "noninteractive")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "--allow-downgrades",
        ])
        .args(BOOKWORM_PACKAGES)
        .arg(format!("{KERNEL_SOURCE_PACKAGE}/trixie-backports"))
        .arg(format!("rust-src={rust_src}"));
    run::run_logged("apt-get install", &mut apt, &cache::log("apt-install")?)
}

/// The `rust-src` version whose upstream part is exactly `rustc`'s: the kernel compiles
/// `core` from it with our rustc, and any other version fails to build.
fn rust_src_candidate(rustc: &str) -> Result<String> {
    let listing = run::output(Command::new("apt-cache").args(["madison", "rust-src"]))?;
    listing
        .lines()
        .filter_map(|line| line.split('|').nth(1).map(str::trim))
        .find(|version| version.starts_with(&format!("{rustc}+")))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "no rust-src {rustc} in the apt sources (rustc is {rustc}); the kernel needs the \
                 library source of exactly that version. `apt-cache madison rust-src` lists:\n{listing}"
            )
        })
}

/// The `x.y.z` of the `rustc` on `PATH`.
pub fn rustc_version() -> Result<String> {
    let text = run::output(Command::new("rustc").arg("--version"))?;
    text.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .ok_or_else(|| format!("cannot read a version from `rustc --version`: {text}"))
}

pub fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status} ${Version}", package])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.strip_prefix("installed ").map(str::to_owned)
}

fn is_root() -> bool {
    run::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid == "0")
}

fn write_if_changed(path: &Path, text: &str) -> Result {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// Our tools' prefix: `cargo install --root` puts binaries in its `bin`.
pub fn tools_dir() -> Result<PathBuf> {
    cache::dir("tools")
}

fn install_bindgen() -> Result {
    let bindgen = tools_dir()?.join("bin/bindgen");
    let current = run::output(Command::new(&bindgen).arg("--version")).unwrap_or_default();
    if current.ends_with(BINDGEN_VERSION) {
        eprintln!("    bindgen {BINDGEN_VERSION}: present");
        return Ok(());
    }
    let mut cargo = Command::new("cargo");
    cargo
        .args(["install", "--locked", "--root"])
        .arg(tools_dir()?)
        .arg(format!("bindgen-cli@{BINDGEN_VERSION}"));
    run::run_logged(
        "cargo install bindgen-cli",
        &mut cargo,
        &cache::log("bindgen")?,
    )
}

/// The virtme-ng venv, whose `bin/vng` boots a guest for interactive use
/// (`cargo xtask vm --vng`).
pub fn venv_dir() -> PathBuf {
    cache::root().join("venv")
}

fn install_virtme_ng() -> Result {
    let venv = venv_dir();
    let pip = venv.join("bin/pip");
    let installed = run::output(Command::new(&pip).args(["show", "virtme-ng"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l == format!("Version: {VIRTME_NG_VERSION}"))
    {
        eprintln!("    virtme-ng {VIRTME_NG_VERSION}: present");
        return Ok(());
    }
    let log = cache::log("virtme-ng")?;
    run::run_logged(
        "python3 -m venv",
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        &log,
    )?;
    run::run_logged(
        "pip install virtme-ng",
        Command::new(&pip).args(["install", &format!("virtme-ng=={VIRTME_NG_VERSION}")]),
        &log,
    )
}

/// `PATH` with `dir` in front.
pub fn path_with(dir: &Path) -> Result<std::ffi::OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs).map_err(|err| format!("PATH: {err}"))
}

/// Sets the environment a Rust-enabled kernel build needs on `cmd`.
///
/// `cargo xtask` runs with cargo's package variables set; clippy takes
/// `CARGO_PKG_RUST_VERSION` (xtask's own minimum) as the kernel's and warns that it differs
/// from the tree's `.clippy.toml`, so the kernel build must not inherit it.
pub fn kernel_build_env(cmd: &mut Command) -> Result<&mut Command> {
    Ok(cmd
        .env_remove("CARGO_PKG_RUST_VERSION")
        .env("RUST_LIB_SRC", RUST_LIB_SRC)
        .env("LIBCLANG_PATH", LIBCLANG_PATH)
        .env("PATH", path_with(&tools_dir()?.join("bin"))?))
}
