//! `cargo xtask test`: every check the project has, in the order that fails fastest.

use std::process::Command;
use std::time::Instant;

use crate::cache;
use crate::guest_tests;
use crate::liveupdate;
use crate::mainline;
use crate::module;
use crate::patches;
use crate::publish_check;
use crate::run::{self, Result};

/// Runs all checks; the first failure stops the run.
pub fn run() -> Result {
    let start = Instant::now();
    userspace()?;
    mainline::check_session_uapi()?;
    loom()?;
    guest_tests::run_all(&[])?;
    mainline::test_module_refusal(&module::ensure()?)?;
    liveupdate::test_all(&[])?;
    patches::check()?;
    eprintln!("all checks passed in {:.0?}", start.elapsed());
    Ok(())
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).current_dir(cache::workspace());
    cmd
}

/// Formatting, lints, unit / property / integration / doc tests (the ABI document's freshness
/// is one of them), and rustdoc with warnings denied (every public item documented).
fn userspace() -> Result {
    run::step("cargo fmt --check");
    run::run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    run::step("cargo clippy (warnings denied)");
    run::run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    run::step("cargo test (unit, property, integration, doc tests, ABI document)");
    run::run(&mut cargo(&["test", "--workspace", "--all-features"]))?;
    run::step("cargo doc (warnings denied)");
    run::run(
        cargo(&["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    publish_check::run()
}

/// The loom models of the sysfs poll protocol, in release mode and their own target directory
/// (a different `--cfg` would otherwise rebuild the main one each time).
fn loom() -> Result {
    run::step("loom models (release, --cfg loom)");
    let start = Instant::now();
    run::run(
        cargo(&[
            "test",
            "--release",
            "-p",
            "luo-state",
            "--test",
            "loom_kernfs",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", cache::workspace().join("target/loom")),
    )?;
    eprintln!("    loom: {:.1?} (build included)", start.elapsed());
    Ok(())
}
