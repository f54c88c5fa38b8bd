//! The kernel tests: each boots its own guest on the debug kernel (lockdep on), loads the
//! freshly built `luo.ko` and runs one test of `luo-guest-tests` there.

use std::process::Command;

use crate::cache;
use crate::module;
use crate::run::{self, Result};
use crate::vm;

/// The tests of `tests/src/bin/luo-guest-tests.rs`, one guest each.
const TESTS: &[&str] = &[
    "layout",
    "transitions",
    "errors",
    "poll",
    "model",
    "rmmod",
    "luoctl",
    "refusal",
];

/// Builds the module and the guest test binary, then runs the tests named in `only` (all when
/// empty); reports every failure.
pub fn run_all(only: &[String]) -> Result {
    if let Some(unknown) = only.iter().find(|name| !TESTS.contains(&name.as_str())) {
        return Err(format!(
            "no kernel test '{unknown}' (there are: {})",
            TESTS.join(", ")
        ));
    }
    let module = module::ensure()?;
    let squatter = module::build_squatter(&module.kernel)?;
    run::step("guest test binary");
    run::run(
        Command::new("cargo")
            .args([
                "build",
                "--quiet",
                "-p",
                "luo-tests",
                "--bin",
                "luo-guest-tests",
            ])
            .current_dir(cache::workspace()),
    )?;
    let binary = cache::workspace().join("target/debug/luo-guest-tests");
    run::step("kernel tests under QEMU (TCG, 2 CPUs, one guest per test)");
    let mut failures = Vec::new();
    for test in TESTS
        .iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == *t))
    {
        let script = format!(
            "LUO_SQUATTER_KO={} {} {test} --ko {}",
            vm::shell_quote(&squatter.to_string_lossy()),
            vm::shell_quote(&binary.to_string_lossy()),
            vm::shell_quote(&module.ko.to_string_lossy())
        );
        let guest = vm::run_in_guest(&module.kernel.build, &script)?;
        let verdict = if guest.success() { "ok" } else { "FAILED" };
        eprintln!("    {test}: {verdict} ({:.1?})", guest.elapsed);
        for line in guest.stdout.lines().filter(|l| l.starts_with("note:")) {
            eprintln!("      {line}");
        }
        if !guest.success() {
            failures.push(vm::failure_report(&format!("kernel test '{test}'"), &guest));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}
