//! The project's automation, run as `cargo xtask <command>` (see `cargo xtask help`).
//!
//! Heavy outputs (the kernel tree and build, the virtme-ng venv, installed tools) are cached
//! under `~/.cache/luo` (or `$LUO_CACHE`), keyed by their inputs, so a second run is quick.
//!
//! # Layers
//!
//! Each top-level module is a folder of tasks on one layer, and it uses only itself and the
//! layers below it, never a higher layer or another folder on its own:
//!
//! 1. [`run`]: running external commands and reporting their failures.
//! 2. [`build`]: what the guests run, built and cached: setup, the kernel source, the kernels,
//!    `luo.ko`, the guests' init, mainline's selftests, the ABI document.
//! 3. [`guest`] (booting a kernel under QEMU and running a script in it, and the `vm`
//!    command) and [`series`] (the in-tree series: generated, applied, built, checked). Both
//!    stand on `build` only; neither knows the other.
//! 4. [`scenario`] (what the guests are made to do: the kernel tests, the live updates, the
//!    tests of luo built in, luo beside mainline's orchestrator, the demo) and [`mod@bench`].
//! 5. [`mod@test`]: every check, in order; and this file with [`flags`], which map each
//!    command to the one module that does it.
//!
//! So the in-tree kernel is the series' ([`series::tree`]), which the built-in tests of
//! [`scenario`] boot; the series never calls back into a scenario. `layers.rs` checks the rule.

mod bench;
mod build;
mod flags;
mod guest;
#[cfg(test)]
mod layers;
mod run;
mod scenario;
mod series;
mod test;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use flags::{Command, Xtask};

fn main() -> ExitCode {
    let matches = Xtask::command().get_matches();
    let name = matches.subcommand_name().unwrap_or("help").to_owned();
    let xtask = Xtask::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let Some(command) = xtask.command else {
        // No command: the help, as `cargo xtask help` prints it.
        return match Xtask::command().print_long_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    };
    match dispatch(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {name}: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` in the module that owns it.
fn dispatch(command: Command) -> run::Result {
    match command {
        Command::Setup => build::setup::run(),
        Command::Kernel { in_tree: false } => build::kernel::ensure().map(drop),
        Command::Kernel { in_tree: true } => series::tree::in_tree_kernel().map(drop),
        Command::Module => build::module::ensure().map(drop),
        Command::Vm {
            console,
            vng,
            command,
        } => guest::vm::run(console, vng, &command),
        Command::Demo {
            runs,
            standalone,
            memory_mib,
        } => scenario::demo::run(scenario::demo::Options {
            runs: runs.get(),
            standalone,
            memory_mib,
        }),
        Command::Test { list, quick, names } => {
            let names = if quick { test::quick() } else { names };
            if list {
                test::list(&names)
            } else {
                test::run(&names)
            }
        }
        Command::TestKernel { builtin, tests } => scenario::kernel_tests::run(builtin, &tests),
        Command::TestPatches => scenario::builtin::test_patches(),
        Command::TestLiveupdate { only } => scenario::liveupdate::test_all(&only),
        Command::TestMainline => scenario::mainline::run(),
        Command::Bench => bench::run(),
        Command::Patches { out } => series::generate::run(out),
        Command::GenAbiDoc => build::abi_doc::write(),
    }
}
