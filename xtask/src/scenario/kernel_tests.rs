//! The kernel tests: each boots its own guest on the debug kernel (lockdep on), loads the
//! freshly built `luo.ko` and runs one test of `luo-guest-tests` there. With `--builtin`, the
//! tests that apply to a built-in run against the in-tree kernel instead (`--ko builtin`).

use std::path::{Path, PathBuf};

use crate::build::kernel::Kernel;
use crate::build::{cache, module, userspace};
use crate::guest::runner::{self, GuestOptions};
use crate::run::{self, Result};
use crate::scenario;
use crate::series;

/// The tests of `tests/src/bin/luo-guest-tests.rs`, one guest each.
pub const TESTS: &[&str] = &[
    "layout",
    "transitions",
    "errors",
    "poll",
    "model",
    "rmmod",
    "luoctl",
    "agent",
    "follow",
    "refusal",
    "production",
    "faults",
    "kho-off",
    "debugfs-off",
];

/// Tests that run only when named (`cargo xtask test-kernel NAME`), never in `test`: none now;
/// a test too slow or not yet passing goes here.
pub const NAMED_ONLY: &[&str] = &[];

/// Words the guest of a test appends to the kernel command line: the fault-injection test
/// checks every failed load with the slab's debug checks and kmemleak on; the boot-option
/// faults boot with the option, and the slab's checks too.
fn append_for(test: &str) -> Vec<String> {
    let words: &[&str] = match test {
        "faults" => &["slub_debug=FZPU", "kmemleak=on"],
        "kho-off" => &["kho=off", "slub_debug=FZPU"],
        "debugfs-off" => &["debugfs=off", "slub_debug=FZPU"],
        _ => &[],
    };
    words.iter().map(|word| (*word).to_owned()).collect()
}

/// The tests that apply to luo built in: not `rmmod` (a built-in cannot be unloaded), not
/// `refusal` (it loads luo next to another owner of the name), not `luoctl` (it covers the
/// library, which the module tests already run against the same interface).
pub const BUILTIN_TESTS: &[&str] = &["layout", "transitions", "errors", "poll", "model"];

/// What `--ko` names in a guest whose kernel has luo built in (`tests/src/module.rs`).
const BUILTIN_KO: &str = "builtin";

/// The kernel command line of the built-in tests: the test hook on, as `insmod luo.ko
/// selftest=1` does for the module.
const BUILTIN_APPEND: &str = "luo.selftest=1";

/// `cargo xtask test-kernel [--builtin] [TEST...]`: builds the module (or the in-tree kernel)
/// and the guest test binary, then runs the tests named (all when none); reports every failure.
pub fn run(builtin: bool, only: &[String]) -> Result {
    let named: Vec<&str> = TESTS.iter().chain(NAMED_ONLY).copied().collect();
    let tests = if builtin {
        BUILTIN_TESTS
    } else if only.is_empty() {
        TESTS
    } else {
        &named[..]
    };
    let suite = if builtin {
        let kernel = series::tree::in_tree_kernel()?;
        check_names(only, tests)?;
        Suite::builtin(&kernel)?
    } else {
        check_names(only, tests)?;
        Suite::module()?
    };
    let flag = if builtin { " --builtin" } else { "" };
    let chosen: Vec<&str> = tests
        .iter()
        .copied()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == t))
        .collect();
    suite.run_each(&chosen, |test| {
        format!("cargo xtask test-kernel{flag} {test}")
    })
}

/// The kernel tests' guests: the kernel they boot and how a test starts in one.
pub struct Suite {
    kernel_build: PathBuf,
    options: GuestOptions,
    start: Start,
}

/// How a test starts in its guest.
enum Start {
    /// Against the freshly built module, with the squatter module at hand.
    Module {
        binary: PathBuf,
        ko: PathBuf,
        squatter: PathBuf,
        /// `luo.ko` as a production build has it: without the test hook.
        production: PathBuf,
    },
    /// Against luo built in.
    Builtin { binary: PathBuf },
}

impl Suite {
    /// The tests of [`TESTS`] against the module: builds it, the squatter and the guest test
    /// binary.
    pub fn module() -> Result<Self> {
        let module = module::ensure()?;
        let squatter = module::build_squatter(&module.kernel)?;
        let production = module::build_production(&module.kernel)?;
        let binary = build_binary()?;
        Ok(Self {
            kernel_build: module.kernel.build,
            options: GuestOptions::default(),
            start: Start::Module {
                binary,
                ko: module.ko,
                squatter,
                production,
            },
        })
    }

    /// The tests of [`BUILTIN_TESTS`] against `kernel`, which has luo built in: builds the guest
    /// test binary.
    pub fn builtin(kernel: &Kernel) -> Result<Self> {
        let binary = build_binary()?;
        Ok(Self {
            kernel_build: kernel.build.clone(),
            options: GuestOptions {
                append: vec![BUILTIN_APPEND.to_owned()],
                ..GuestOptions::default()
            },
            start: Start::Builtin { binary },
        })
    }

    fn script(&self, test: &str) -> String {
        let quote = |path: &Path| runner::shell_quote(&path.to_string_lossy());
        match &self.start {
            Start::Module {
                binary,
                ko,
                squatter,
                production,
            } => format!(
                "LUO_SQUATTER_KO={} LUO_PRODUCTION_KO={} {} {test} --ko {}",
                quote(squatter),
                quote(production),
                quote(binary),
                quote(ko)
            ),
            Start::Builtin { binary } => format!("{} {test} --ko {BUILTIN_KO}", quote(binary)),
        }
    }

    /// Runs each of `tests` in a guest of its own and reports every failure, each with the
    /// guest console's tail and the command `rerun(test)` that runs that test alone.
    pub fn run_each(&self, tests: &[&str], rerun: impl Fn(&str) -> String) -> Result {
        run::step(&match self.start {
            Start::Module { .. } => {
                "kernel tests under QEMU (TCG, 2 CPUs, one guest per test)".to_owned()
            }
            Start::Builtin { .. } => format!(
                "kernel tests against luo built in (QEMU, {BUILTIN_APPEND}, one guest per test)"
            ),
        });
        let mut failures = Vec::new();
        for test in tests {
            if let Err(report) = self.run(test) {
                failures.push(scenario::rerun_alone(&report, &rerun(test)));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n\n"))
        }
    }

    /// Runs `test` in a guest of its own, printing its verdict and its `note:` lines; the
    /// error is the failure report.
    fn run(&self, test: &str) -> Result {
        let options = GuestOptions {
            rw_dirs: self.options.rw_dirs.clone(),
            append: [self.options.append.clone(), append_for(test)].concat(),
            ..GuestOptions::default()
        };
        let guest = runner::run_in_guest_with(
            &self.kernel_build,
            &self.script(test),
            &options,
            |_, _, _| {},
        )?;
        let verdict = if guest.success() { "ok" } else { "FAILED" };
        eprintln!("    {test}: {verdict} ({:.1?})", guest.elapsed);
        for line in guest.stdout.lines().filter(|l| l.starts_with("note:")) {
            eprintln!("      {line}");
        }
        if guest.success() {
            Ok(())
        } else {
            Err(runner::failure_report(
                &format!("kernel test '{test}'"),
                &guest,
            ))
        }
    }
}

fn check_names(only: &[String], tests: &[&str]) -> Result {
    match only.iter().find(|name| !tests.contains(&name.as_str())) {
        Some(unknown) => Err(format!(
            "no kernel test '{unknown}' here (there are: {})",
            tests.join(", ")
        )),
        None => Ok(()),
    }
}

/// Builds the guest test binary and `luoctl`, which the `luoctl`, `agent` and `follow` tests
/// run from beside it.
pub fn build_binary() -> Result<PathBuf> {
    run::step("guest test binary and luoctl");
    run::run(userspace::cargo_build().args([
        "-p",
        "luo-tests",
        "--bin",
        "luo-guest-tests",
        "-p",
        "luoctl",
        "--bin",
        "luoctl",
    ]))?;
    Ok(cache::workspace().join("target/debug/luo-guest-tests"))
}
