//! The kernel tests, one module per claim group; each runs in a fresh guest.

pub mod agent;
pub mod arrival;
pub mod boot_faults;
pub mod errors;
pub mod faults;
pub mod follow;
pub mod layout;
pub mod lines;
pub mod luoctl;
pub mod model;
pub mod nobody;
pub mod observed;
pub mod poll;
pub mod production;
pub mod refusal;
pub mod rmmod;
pub mod transitions;

use std::fs::File;

use luo_state::State;

use crate::{Outcome, dev, ensure, sysfs};

/// Checks that sysfs and `GET_STATE` both show `expected`, right now.
pub fn assert_state(device: &File, expected: State, context: &str) -> Outcome {
    let shown = sysfs::read_fresh()?;
    let got = dev::get_state(device)?;
    ensure!(
        shown == expected,
        "{context}: sysfs shows '{shown}', expected '{expected}'"
    );
    ensure!(
        got == expected,
        "{context}: GET_STATE says '{got}', expected '{expected}'"
    );
    Ok(())
}
