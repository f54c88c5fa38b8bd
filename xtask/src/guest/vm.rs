//! `cargo xtask vm [--console] [--vng] -- CMD...`: one command in a guest, for a person.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::build::{cache, kernel, setup};
use crate::guest::runner::{self, GuestOptions, Stream};
use crate::run::{self, Result};

/// `cargo xtask vm [--console] [--vng] -- CMD...`: run a command in a guest booted on our
/// kernel, its output printed as it comes, failing when it fails. `--console` shows the
/// guest's console as it comes too (on stderr, with the host's seconds since QEMU started);
/// `--vng` boots with virtme-ng instead, for a shell when no command is given.
pub fn run(show_console: bool, vng: bool, command: &[String]) -> Result {
    let kernel = kernel::ensure()?;
    if vng {
        return run_vng(&kernel.build, command);
    }
    run::step("guest");
    let script = command
        .iter()
        .map(|a| runner::shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let start = Instant::now();
    let run = runner::run_in_guest_with(
        &kernel.build,
        &script,
        &GuestOptions::default(),
        |stream, line, at| match stream {
            Stream::Stdout => println!("{line}"),
            Stream::Console if show_console => eprintln!(
                "{:>7.3}s {line}",
                at.saturating_duration_since(start).as_secs_f64()
            ),
            Stream::Console => {}
        },
    )?;
    if run.success() {
        Ok(())
    } else {
        Err(runner::failure_report("the command", &run))
    }
}

/// `cargo xtask vm --vng [-- CMD...]`: the same kernel under virtme-ng, for interactive use
/// (its init starts udev and a shell; slower to boot, and not what the tests use).
fn run_vng(kernel_build: &Path, command: &[String]) -> Result {
    let vng = setup::venv_dir().join("bin/vng");
    let mut cmd = Command::new(&vng);
    cmd.arg("--run")
        .arg(kernel_build)
        // No KVM here: without this flag vng picks KVM and hangs. 9p because bookworm's
        // virtiofsd is too old and costs seconds before vng falls back.
        .args(["--disable-kvm", "--force-9p", "--skip-modules"])
        .args(["--cpus", "2", "--memory", "1G"])
        .current_dir(cache::workspace())
        // vng starts its helpers (virtme-run) from PATH.
        .env("PATH", setup::path_with(&setup::venv_dir().join("bin"))?);
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    run::run(&mut cmd)
}
