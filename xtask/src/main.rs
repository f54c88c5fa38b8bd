//! The project's automation, run as `cargo xtask <command>` (see `cargo xtask help`).
//!
//! Heavy outputs (the kernel tree and build, the virtme-ng venv, installed tools) are cached
//! under `~/.cache/luo` (or `$LUO_CACHE`), keyed by their inputs, so a second run is quick.

mod abi_doc;
mod bench;
mod cache;
mod check;
mod demo;
mod guest_tests;
mod kernel;
mod liveupdate;
mod module;
mod run;
mod setup;
mod vm;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  setup         install what the kernel build and the guest need (apt with a trixie-backports
                pin, rust-src matching rustc, bindgen-cli, virtme-ng); safe to repeat
  kernel        set up, then build the guest kernel (cached by version, config and rustc)
  module        build luo.ko against that kernel (KDIR=... to use your own tree), with the
                kernel's clippy lints and rustfmt settings checked
  vm -- CMD...  boot the guest kernel under QEMU (TCG) and run CMD in it (host files shared)
  demo          the main job: build everything, boot the guest, load luo.ko and walk a live
                update cycle watched by luoctl
  test          every check: fmt, clippy, unit, property, loom, doc tests, the ABI document,
                the kernel tests under QEMU, and the live update across kexec with its
                failure paths
  test-kernel [TEST...]
                only the kernel tests under QEMU (all, or the ones named)
  test-liveupdate
                only the live update across kexec and its failure paths
  bench         watcher latency, read cost and idle syscalls, in one guest; targets reported
  gen-abi-doc   rewrite Documentation/ABI/testing/sysfs-kernel-liveupdate
  help          this text

Environment: LUO_CACHE (default ~/.cache/luo), KDIR (a Rust-enabled kernel build to use
instead of ours), LUO_VM_TIMEOUT (seconds per guest, default 300).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "setup" => setup::run(),
        "kernel" => kernel::ensure().map(drop),
        "module" => module::ensure().map(drop),
        "vm" => vm::run_command(rest),
        "demo" => demo::run(),
        "test" => check::run(),
        "test-kernel" => guest_tests::run_all(rest),
        "test-liveupdate" => liveupdate::test_all(),
        "bench" => bench::run(),
        "gen-abi-doc" => abi_doc::write(),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {command}: error: {message}");
            ExitCode::FAILURE
        }
    }
}
