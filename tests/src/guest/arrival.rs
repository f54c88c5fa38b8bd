//! How the module comes up in a kernel that a kexec started: run by the live-update tests of
//! `cargo xtask test` in the new kernel, not as a test of its own.
//!
//! After a live update (`updated`): the state and generation are the handover's, userspace may
//! send nothing but `finish`, a module loaded again before the finish is `updated` again, and
//! one loaded again after it is `normal`, with the same generation throughout. After any other
//! kexec: `normal`, the generation carried over, and the log line that says why.

use std::fs;
use std::path::Path;

use luo_state::{Event, State};
use luo_sysfs_abi::log::Kind;
use luo_sysfs_abi::parse_generation;
use luo_sysfs_abi::path::GENERATION_PATH;

use crate::guest::assert_state;
use crate::{Outcome, dev, ensure, kmsg, module, v3_table};

/// The generation the module shows.
fn generation() -> Result<u64, String> {
    let bytes = fs::read(GENERATION_PATH).map_err(|err| format!("{GENERATION_PATH}: {err}"))?;
    parse_generation(&bytes).map_err(|err| format!("{GENERATION_PATH}: {err}"))
}

fn expect_generation(expected: u64, context: &str) -> Outcome {
    let got = generation()?;
    ensure!(
        got == expected,
        "{context}: {GENERATION_PATH} shows {got}, expected {expected}"
    );
    Ok(())
}

fn reload(ko: &Path) -> Outcome {
    module::rmmod()?;
    module::load_with_selftest(ko)
}

/// Loads the module at `ko` and checks the arrival: `expected` is `updated` or `normal`;
/// `reason`, when given, must appear in luo's line that says why this boot is not a live
/// update.
pub fn run(ko: &Path, expected: State, generation: u64, reason: Option<&str>) -> Outcome {
    module::load_with_selftest(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    assert_state(&control, expected, "after the kexec")?;
    expect_generation(generation, "after the kexec")?;
    if let Some(reason) = reason {
        let log = kmsg::dmesg()?;
        let luo_lines = kmsg::luo_lines(log.lines());
        ensure!(
            luo_lines
                .iter()
                .any(|line| line.kind == Kind::NotALiveUpdate && line.text.contains(reason)),
            "luo's log does not say why this boot is not a live update ('{reason}'):\n{}",
            luo_lines
                .iter()
                .map(|line| line.text)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if expected == State::Updated {
        drop(control);
        after_a_live_update(ko, generation)?;
    }
    kmsg::assert_clean()
}

/// `updated` refuses everything but `finish`; a reload keeps `updated` until the finish and is
/// `normal` after it.
fn after_a_live_update(ko: &Path, generation: u64) -> Outcome {
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    for event in [Event::Prepare, Event::Cancel] {
        let got = dev::set_event(&control, event);
        ensure!(
            got == Err(v3_table::EINVAL),
            "SET_EVENT {event} in 'updated' answered {got:?}, expected EINVAL"
        );
        assert_state(
            &control,
            State::Updated,
            &format!("after the refused {event}"),
        )?;
    }
    drop(control);

    reload(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    assert_state(&control, State::Updated, "a reload before finish")?;
    expect_generation(generation, "a reload before finish")?;
    dev::trigger(&control, Event::Finish)?;
    assert_state(&control, State::Normal, "right after SET_EVENT finish")?;
    drop(control);

    reload(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    assert_state(&control, State::Normal, "a reload after finish")?;
    expect_generation(generation, "a reload after finish")
}
