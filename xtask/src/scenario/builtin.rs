//! luo built in: `cargo xtask test-patches`, and its live update across kexec (the in-tree
//! kernel, one guest, two boots).
//!
//! The cold boot prepares and reboots into the same kernel with `kexec_file_load` (the call that
//! carries kexec handover data); the reboot notifier freezes on the way. The guest's init runs
//! the same script in the new kernel, which must have come up `updated`, generation 1, and must
//! have decided so before userspace started: its log line `luo: Ready in state [updated]` comes
//! before the kernel's `Run ... as init process`. No module is loaded in either boot.

use luo_sysfs_abi::State;
use luo_sysfs_abi::log::Message;

use crate::build::kernel::Kernel;
use crate::guest::console;
use crate::guest::runner::{self, GuestOptions};
use crate::run::{self, Result};
use crate::scenario::{self, kernel_tests, liveupdate, mainline};
use crate::series;

/// The line the second boot prints when the scenario held.
const EXPECTED: &str = "built-in live update: generation 1, updated before init, finished";

/// The script, run in both boots; see its header.
const SCRIPT: &str = include_str!("../../../tests/guest-scripts/builtin-liveupdate.sh");

/// The name of this live update among the built-in's tests.
pub const LIVEUPDATE: &str = "liveupdate";

/// The tests of luo built in: the kernel tests that apply to it, then [`LIVEUPDATE`].
pub fn names() -> impl Iterator<Item = &'static str> {
    kernel_tests::BUILTIN_TESTS
        .iter()
        .copied()
        .chain(std::iter::once(LIVEUPDATE))
}

/// `cargo xtask test-patches`: the series checked and built in (see [`series::check`]), its luo
/// objects built under the config matrix (see [`series::matrix`]), then the built-in run through
/// the guest tests, this live update, and the observer flavour beside mainline's orchestrator.
pub fn test_patches() -> Result {
    let kernel = series::check::run()?;
    series::matrix::run()?;
    let all: Vec<&str> = names().collect();
    run_each(&kernel, &all, |test| match test {
        LIVEUPDATE => "cargo xtask test-patches".to_owned(),
        test => format!("cargo xtask test-kernel --builtin {test}"),
    })?;
    mainline::test_observer(&kernel)
}

/// Runs the tests of `tests` (of [`names`]) against `kernel`, which has luo built in; each
/// failure comes with the command `rerun(test)` that runs that test again.
pub fn run_each(kernel: &Kernel, tests: &[&str], rerun: impl Fn(&str) -> String) -> Result {
    let guest_tests: Vec<&str> = tests.iter().copied().filter(|t| *t != LIVEUPDATE).collect();
    if !guest_tests.is_empty() {
        kernel_tests::Suite::builtin(kernel)?.run_each(&guest_tests, &rerun)?;
    }
    if tests.contains(&LIVEUPDATE) {
        test(kernel).map_err(|report| scenario::rerun_alone(&report, &rerun(LIVEUPDATE)))?;
    }
    Ok(())
}

/// Runs the scenario on `kernel`, which has luo built in.
pub fn test(kernel: &Kernel) -> Result {
    // The script runs luoctl, and nothing else of ours but the kernel.
    liveupdate::build_luoctl()?;
    run::step("live update across kexec with luo built in (QEMU)");
    let bzimage = kernel.build.join("arch/x86/boot/bzImage");
    let script = format!(
        "BZIMAGE={}\n{}{SCRIPT}",
        runner::shell_quote(&bzimage.to_string_lossy()),
        scenario::SCRIPT_LIB
    );
    let guest = runner::run_in_guest_with(
        &kernel.build,
        &script,
        &GuestOptions::default(),
        |_, _, _| {},
    )?;
    let what = "the live update with luo built in";
    if !guest.success() {
        return Err(runner::failure_report(what, &guest));
    }
    if !guest.stdout.lines().any(|line| line.trim() == EXPECTED) {
        return Err(format!(
            "{what}: expected the line '{EXPECTED}'; the guest printed:\n{}",
            guest.stdout
        ));
    }
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines().filter(|l| l.starts_with("note:")) {
        eprintln!("      {line}");
    }
    check_console_order(&guest.console)
}

/// The same order, seen on the console the host read: in the boot after the kexec, luo's
/// `Ready` line comes before the init line.
fn check_console_order(console: &str) -> Result {
    let second_boot = console
        .rfind(console::LINUX_VERSION)
        .map_or(console, |start| &console[start..]);
    let mut offset = 0;
    let (mut ready, mut init) = (None, None);
    for line in second_boot.split_inclusive('\n') {
        let updated = Message::find(line)
            .and_then(|message| message.ready())
            .is_some_and(|ready| ready.state == State::Updated);
        if updated {
            ready = ready.or(Some(offset));
        } else if line.trim_end().ends_with(console::INIT_PROCESS) {
            init = init.or(Some(offset));
        }
        offset += line.len();
    }
    match (ready, init) {
        (Some(ready), Some(init)) if ready < init => Ok(()),
        (ready, init) => Err(format!(
            "on the console of the new kernel, luo's ready line ({ready:?}) does not precede \
             the init line ({init:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use luo_sysfs_abi::Flavour;
    use luo_sysfs_abi::log::{Line, PREFIX, Ready};

    /// The ready line the module prints in `state`.
    fn ready(state: State) -> String {
        let ready = Ready {
            flavour: Flavour::Standalone,
            state,
            generation: u64::from(state == State::Updated),
            init_us: 700,
        };
        format!("[    1.2] {PREFIX}{}\n", Line::Ready(ready))
    }

    #[test]
    fn the_console_order_is_read_from_the_last_boot() {
        let init = "[    1.5] Run /init as init process\n";
        let boot = "[    0.0] Linux version 7.3\n";
        let (normal, updated) = (ready(State::Normal), ready(State::Updated));
        let console = format!("{boot}{normal}{init}{boot}{updated}{init}");
        assert!(check_console_order(&console).is_ok());
        let late = format!("{boot}{init}{updated}");
        assert!(check_console_order(&late).is_err());
    }

    #[test]
    fn mainline_lines_do_not_stand_in_for_luos_ready_line() {
        let console = "Linux version 7.3\nluo: Retrieved live update data, liveupdate number: 1\n\
                       Run /init as init process\n";
        assert!(check_console_order(console).is_err());
    }

    #[test]
    fn the_script_names_the_expected_line() {
        assert!(SCRIPT.contains(EXPECTED));
    }
}
