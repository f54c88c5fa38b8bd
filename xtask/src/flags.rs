//! The command line, declared once: the parser and `cargo xtask help` both come from these
//! types, so the help cannot drift from what is parsed.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::scenario::demo;

/// What the help says of the environment.
const ENVIRONMENT: &str = "\
Environment: LUO_CACHE (default ~/.cache/luo), KDIR (a Rust-enabled kernel build to use \
instead of ours), LUO_VM_TIMEOUT (seconds per guest, default 300), LUO_PATCH_AUTHOR \
('Name <email>', the author of the series of `patches`).";

/// The project's automation.
///
/// Heavy outputs (the kernel tree and builds, the virtme-ng venv, installed tools) are cached
/// under ~/.cache/luo, keyed by their inputs, so a second run is quick.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", after_help = ENVIRONMENT)]
pub struct Xtask {
    /// What to do; the help when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install what the kernel build and the guest need (apt with a trixie-backports pin,
    /// rust-src matching rustc, bindgen-cli, virtme-ng for `vm --vng`); safe to repeat.
    Setup,
    /// Set up, then build the guest kernel (cached by version, config and rustc).
    Kernel {
        /// The same kernel with the series of `patches` applied to the pristine tree and luo
        /// built in (CONFIG_LIVEUPDATE_SYSFS_API=y, CLIPPY=1), cached by the series as well.
        #[arg(long)]
        in_tree: bool,
    },
    /// Build luo.ko against that kernel (KDIR=... to use your own tree), with the kernel's
    /// clippy lints and rustfmt settings checked.
    Module,
    /// Boot the guest kernel under QEMU (TCG) with our init (luo-guest-init) and run CMD in it
    /// as root, the host's files visible read-only.
    Vm {
        /// Show the guest's console as it comes (on stderr, with the host's seconds since QEMU
        /// started).
        #[arg(long)]
        console: bool,
        /// Boot with virtme-ng instead (a shell when no CMD is given).
        #[arg(long)]
        vng: bool,
        /// The command and its arguments.
        #[arg(
            value_name = "CMD",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required_unless_present = "vng"
        )]
        command: Vec<String>,
    },
    /// The main job: build everything, boot the guest and walk a live update driven by
    /// `luoctl agent`, watched by luoctl: by default luo beside mainline LUO (the in-tree
    /// kernel, liveupdate=on), where a workload's memory survives in a memfd the agent keeps.
    Demo {
        /// Walk the cycle N times, and report the median and range of each span.
        #[arg(long, value_name = "N", default_value = "1")]
        runs: NonZeroUsize,
        /// luo's own v3 state machine (luo.ko on the module's kernel) instead; the workload
        /// is checkpointed to a file by the hooks.
        #[arg(long)]
        standalone: bool,
        /// How much memory the workload keeps across the kexec, in MiB.
        #[arg(
            long,
            value_name = "MIB",
            default_value_t = demo::DEFAULT_MEMORY_MIB,
            conflicts_with = "standalone"
        )]
        memory_mib: u64,
    },
    /// Every check: fmt, the guest scripts (sh -n, shellcheck), clippy, unit, property, loom,
    /// doc tests, the ABI document, the kernel tests under QEMU, the live update across kexec
    /// with its failure paths, and the in-tree series (test-patches); or only the ones named,
    /// or the quick loop.
    Test {
        /// Name every test, one a line, and run none (with --quick, the quick loop's).
        #[arg(long)]
        list: bool,
        /// The developer's loop, about two minutes warm on 2 cores: fmt, the guest scripts,
        /// clippy, the unit and loom tests, luoctl on luo.ko, the standalone demo's cycle, the
        /// built-in's live update, and the default demo beside mainline LUO (mainline/demo).
        #[arg(long, conflicts_with = "names")]
        quick: bool,
        /// The tests to run: names from --list (among them `patches` and `config-matrix`), or
        /// a group (`kernel`, `liveupdate`, `builtin`, `mainline`, `systemd`); all when none is
        /// named.
        #[arg(value_name = "NAME", conflicts_with = "list")]
        names: Vec<String>,
    },
    /// Only the kernel tests under QEMU (all, or the ones named).
    TestKernel {
        /// The ones that apply to luo built in, against the in-tree kernel.
        #[arg(long)]
        builtin: bool,
        /// The tests to run; all when none is named.
        #[arg(value_name = "TEST")]
        tests: Vec<String>,
    },
    /// Only the in-tree series: regenerate it, `git am` it on the pristine tree,
    /// checkpatch.pl --strict, build it in (and its luo objects without debugfs, without KHO),
    /// run the built-in tests and a live update.
    TestPatches,
    /// Only the live update across kexec and its failure paths.
    TestLiveupdate {
        /// Only the scenarios whose name contains one of these words ("cycle": the demo's
        /// cycle); all when none is given.
        #[arg(value_name = "WORD")]
        only: Vec<String>,
    },
    /// luo beside mainline LUO (liveupdate=on): the in-tree kernel's observer flavour with
    /// mainline's own selftests and a 256 MiB memfd across a live update, and luo.ko's refusal
    /// on its kernel.
    TestMainline,
    /// Watcher latency, read cost and idle syscalls, in one guest; targets reported.
    Bench,
    /// Write the in-tree series against Linux 7.3: the sysfs abstraction as
    /// rust/kernel/sysfs.rs, then luo under kernel/liveupdate/luo_sysfs with its Kconfig
    /// option, ABI file and MAINTAINERS entry, all generated from this repository.
    Patches {
        /// Where to write it [default: target/patches].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Rewrite Documentation/ABI/testing/sysfs-kernel-liveupdate.
    GenAbiDoc,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Command>, clap::Error> {
        Xtask::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .map(|xtask| xtask.command)
    }

    #[test]
    fn the_declaration_is_consistent() {
        Xtask::command().debug_assert();
    }

    #[test]
    fn vm_takes_its_command_after_a_double_dash_or_at_once() {
        for args in [
            &["vm", "--console", "--", "ls", "-l"][..],
            &["vm", "--console", "ls", "-l"],
        ] {
            let Some(Command::Vm {
                console, command, ..
            }) = parse(args).unwrap()
            else {
                panic!("{args:?} is not vm");
            };
            assert!(console);
            assert_eq!(command, ["ls", "-l"]);
        }
        let Some(Command::Vm { command, .. }) = parse(&["vm", "sh", "-c", "--console"]).unwrap()
        else {
            panic!("not vm");
        };
        assert_eq!(
            command,
            ["sh", "-c", "--console"],
            "flags after CMD are CMD's"
        );
    }

    #[test]
    fn vm_needs_a_command_unless_it_boots_virtme_ng() {
        assert!(parse(&["vm"]).is_err());
        assert!(matches!(
            parse(&["vm", "--vng"]).unwrap(),
            Some(Command::Vm { vng: true, .. })
        ));
    }

    #[test]
    fn quick_is_a_set_of_its_own() {
        assert!(matches!(
            parse(&["test", "--quick"]).unwrap(),
            Some(Command::Test { quick: true, list: false, ref names }) if names.is_empty()
        ));
        assert!(matches!(
            parse(&["test", "--quick", "--list"]).unwrap(),
            Some(Command::Test {
                quick: true,
                list: true,
                ..
            })
        ));
        assert!(
            parse(&["test", "--quick", "kernel"]).is_err(),
            "--quick names its own tests"
        );
    }

    #[test]
    fn demo_runs_at_least_once() {
        assert!(parse(&["demo", "--runs", "0"]).is_err());
        assert!(matches!(
            parse(&["demo"]).unwrap(),
            Some(Command::Demo { runs, standalone: false, memory_mib })
                if runs.get() == 1 && memory_mib == demo::DEFAULT_MEMORY_MIB
        ));
    }
}
