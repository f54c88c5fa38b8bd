//! The project's automation, run as `cargo xtask <command>` (see `cargo xtask help`).
//!
//! Heavy outputs (the kernel tree and build, the virtme-ng venv, installed tools) are cached
//! under `~/.cache/luo` (or `$LUO_CACHE`), keyed by their inputs, so a second run is quick.

mod abi_doc;
mod bench;
mod cache;
mod check;
mod demo;
mod guest_init;
mod guest_tests;
mod kernel;
mod liveupdate;
mod liveupdate_builtin;
mod mainline;
mod module;
mod patches;
mod publish_check;
mod run;
mod setup;
mod timeline;
mod vm;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  setup         install what the kernel build and the guest need (apt with a trixie-backports
                pin, rust-src matching rustc, bindgen-cli, virtme-ng for `vm --vng`); safe
                to repeat
  kernel [--in-tree]
                set up, then build the guest kernel (cached by version, config and rustc);
                --in-tree: the same kernel with the series of `patches` applied to the
                pristine tree and luo built in (CONFIG_LIVEUPDATE_SYSFS_API=y, CLIPPY=1),
                cached by the series as well
  module        build luo.ko against that kernel (KDIR=... to use your own tree), with the
                kernel's clippy lints and rustfmt settings checked
  vm [--console] [--vng] -- CMD...
                boot the guest kernel under QEMU (TCG) with our init (luo-guest-init) and run
                CMD in it as root, the host's files visible read-only; --console shows the
                guest's console as it comes; --vng boots with virtme-ng instead (a shell when
                no CMD is given)
  demo          the main job: build everything, boot the guest, load luo.ko and walk a live
                update cycle watched by luoctl
  test          every check: fmt, clippy, unit, property, loom, doc tests, the ABI document,
                the kernel tests under QEMU, the live update across kexec with its
                failure paths, and the in-tree series (test-patches)
  test-kernel [--builtin] [TEST...]
                only the kernel tests under QEMU (all, or the ones named); --builtin: the
                ones that apply to luo built in, against the in-tree kernel
  test-patches  only the in-tree series: regenerate it, `git am` it on the pristine tree,
                checkpatch.pl --strict, build it in, run the built-in tests and a live update
  test-liveupdate
                only the live update across kexec and its failure paths
  test-mainline luo beside mainline LUO (liveupdate=on): the in-tree kernel's observer flavour
                with mainline's own selftests and a 256 MiB memfd across a live update, and
                luo.ko's refusal on its kernel
  bench         watcher latency, read cost and idle syscalls, in one guest; targets reported
  patches [--out DIR]
                write the in-tree series against Linux 7.3 (default target/patches): the
                sysfs abstraction as rust/kernel/sysfs.rs, then luo under
                kernel/liveupdate/luo_sysfs with its Kconfig option, ABI file and
                MAINTAINERS entry, all generated from this repository
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
        "kernel" => kernel::run(rest),
        "module" => module::ensure().map(drop),
        "vm" => vm::run_command(rest),
        "demo" => demo::run(rest),
        "test" => check::run(),
        "test-kernel" => guest_tests::run_all(rest),
        "test-liveupdate" => liveupdate::test_all(rest),
        "test-patches" => patches::check(),
        "test-mainline" => mainline::run(),
        "patches" => patches::run(rest),
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
