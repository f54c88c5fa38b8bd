//! Test 8: next to another owner of the name `liveupdate`, the load fails with one log line
//! that says why, leaves nothing behind and prints no stack trace; once the other owner is
//! gone, luo loads.

use std::path::{Path, PathBuf};

use luo_sysfs_abi::log::{Line, NotLoading};

use crate::{Outcome, ensure, kmsg, module};

/// Whether `text` (one of luo's lines) is the refusal for the misc device name taken: the line
/// names mainline's orchestrator as the likely owner when the kernel has one.
fn is_refusal(text: &str) -> bool {
    [false, true].into_iter().any(|mainline| {
        Line::NotLoading(NotLoading::MiscNameTaken { mainline }).to_string() == text
    })
}

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
    let luo_lines = kmsg::luo_lines(new.iter().copied());
    let refusals = luo_lines
        .iter()
        .filter(|line| is_refusal(line.text))
        .count();
    ensure!(
        refusals == 1,
        "expected the refusal once in the log, found it {refusals} times:\n{}",
        new.join("\n")
    );
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
