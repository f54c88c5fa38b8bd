//! luo beside mainline's live update orchestrator (LUO), in guests booted with `liveupdate=on`:
//! the observer flavour of the in-tree kernel, with mainline's own selftests (see
//! [`selftests`]) and a memfd that survives; and the out-of-tree module's refusal on the
//! module's kernel.

use crate::build::kernel::Kernel;
use crate::build::module::{self, Module};
use crate::build::{cache, selftests, setup};
use crate::guest::runner::{self, GuestOptions};
use crate::run::{self, Result};
use crate::scenario::{self, kernel_tests, liveupdate};
use crate::series;

/// The guest script of the observer flavour (four boots); see its header.
const OBSERVER_SCRIPT: &str = include_str!("../../../tests/guest-scripts/observer.sh");

/// The line its last boot prints when every check held.
const OBSERVER_DONE: &str =
    "observer: memory survived, every watched change legal, empty kexecs normal";

/// The guest script of luo.ko's refusal beside mainline LUO; see its header.
const REFUSAL_SCRIPT: &str = include_str!("../../../tests/guest-scripts/mainline-refusal.sh");

/// `cargo xtask test-mainline`: both tests, the in-tree kernel built (or taken from the cache)
/// from the series as it is now.
pub fn run() -> Result {
    setup::run()?;
    test_module_refusal(&module::ensure()?)?;
    test_observer(&series::tree::in_tree_kernel()?)
}

/// The observer flavour on `kernel` (the in-tree kernel), booted with `liveupdate=on`.
pub fn test_observer(kernel: &Kernel) -> Result {
    let selftests = selftests::ensure()?;
    // What the script runs: luoctl and the guest checks (not the module, nor its kernel).
    kernel_tests::build_binary()?;
    run::step("luo beside mainline LUO: the observer flavour (QEMU, liveupdate=on, four boots)");
    let dir = cache::scratch("observer")?;
    liveupdate::clear(&dir)?;
    let script = format!(
        "LUOCTL={luoctl}\nCHECK={check}\nDIR={dir}\nBZIMAGE={bz}\nSELFTESTS={selftests}\n{lib}{OBSERVER_SCRIPT}",
        lib = scenario::SCRIPT_LIB,
        luoctl = runner::shell_quote(
            &cache::workspace()
                .join("target/debug/luoctl")
                .to_string_lossy()
        ),
        check = runner::shell_quote(
            &cache::workspace()
                .join("target/debug/luo-guest-tests")
                .to_string_lossy()
        ),
        dir = runner::shell_quote(&dir.to_string_lossy()),
        bz = runner::shell_quote(&kernel.build.join("arch/x86/boot/bzImage").to_string_lossy()),
        selftests = runner::shell_quote(&selftests.to_string_lossy()),
    );
    let options = GuestOptions {
        rw_dirs: vec![dir.clone()],
        append: vec!["liveupdate=on".to_owned()],
        ..GuestOptions::default()
    };
    let guest = runner::run_in_guest_with(&kernel.build, &script, &options, |_, _, _| {})?;
    let what = "the observer flavour beside mainline LUO";
    if !guest.success() {
        return Err(runner::failure_report(what, &guest));
    }
    if !guest
        .stdout
        .lines()
        .any(|line| line.trim() == OBSERVER_DONE)
    {
        return Err(format!(
            "{what}: expected the line '{OBSERVER_DONE}'; the guest printed:\n{}",
            guest.stdout
        ));
    }
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines() {
        eprintln!("      {line}");
    }
    Ok(())
}

/// The out-of-tree module on its kernel (`CONFIG_LIVEUPDATE=y`) booted with `liveupdate=on`:
/// mainline owns `/dev/liveupdate`, so the load fails with one line that names the in-tree
/// flavour, no splat, and nothing left behind.
pub fn test_module_refusal(module: &Module) -> Result {
    run::step("luo.ko next to mainline LUO on (QEMU, liveupdate=on)");
    let script = format!(
        "KO={ko}\n{REFUSAL_SCRIPT}",
        ko = runner::shell_quote(&module.ko.to_string_lossy()),
    );
    let options = GuestOptions {
        rw_dirs: Vec::new(),
        append: vec!["liveupdate=on".to_owned()],
        ..GuestOptions::default()
    };
    let guest = runner::run_in_guest_with(&module.kernel.build, &script, &options, |_, _, _| {})?;
    let what = "luo.ko next to mainline LUO";
    if !guest.success() {
        return Err(runner::failure_report(what, &guest));
    }
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines() {
        eprintln!("      {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::lines;

    #[test]
    fn the_observer_script_prints_its_done_line() {
        assert!(lines::prints(OBSERVER_SCRIPT, OBSERVER_DONE));
    }
}
