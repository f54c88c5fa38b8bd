//! Test 8: next to another owner of the name `liveupdate`, the load fails with one log line
//! that says why, leaves nothing behind and prints no stack trace; once the other owner is
//! gone, luo loads.

use std::path::{Path, PathBuf};

use crate::{Outcome, ensure, kmsg, module};

/// The line luo logs when the misc device name is taken.
const REFUSAL: &str = "luo: not loading: another driver owns the misc device name 'liveupdate'";

/// Runs the refusal checks with the module at `ko`; the stand-in owner comes from
/// `LUO_SQUATTER_KO` (set by `cargo xtask test-kernel`).
pub fn run(ko: &Path) -> Outcome {
    let squatter = std::env::var_os("LUO_SQUATTER_KO")
        .map(PathBuf::from)
        .ok_or("LUO_SQUATTER_KO is not set: run this test through cargo xtask test-kernel")?;
    module::insmod(&squatter, &[])?;
    let before = kmsg::dmesg()?.lines().count();
    let refused = module::insmod(ko, &[]);
    ensure!(
        refused.is_err(),
        "luo loaded although the name 'liveupdate' was taken"
    );
    let log = kmsg::dmesg()?;
    let new: Vec<&str> = log.lines().skip(before).collect();
    let refusals = new.iter().filter(|line| line.contains(REFUSAL)).count();
    ensure!(
        refusals == 1,
        "expected the refusal once in the log, found it {refusals} times:\n{}",
        new.join("\n")
    );
    let luo_lines: Vec<&&str> = new.iter().filter(|line| line.contains("luo: ")).collect();
    ensure!(
        luo_lines.len() == 1,
        "the refused load logged more than its one line:\n{}",
        new.join("\n")
    );
    kmsg::assert_no_splat(&new.join("\n"))?;
    ensure!(
        !Path::new(luo_sysfs_abi::path::SYSFS_DIR).exists(),
        "the refused load left /sys/kernel/liveupdate behind"
    );
    module::rmmod_named("liveupdate_squatter")?;
    module::insmod(ko, &[])?;
    ensure!(
        Path::new(luo_sysfs_abi::path::STATE_PATH).exists(),
        "luo loaded after the other owner left, but shows no state file"
    );
    Ok(())
}
