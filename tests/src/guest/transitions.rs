//! Test 2: every transition of a cold boot, by ioctl and by the test hook; sysfs shows the new
//! word as soon as the call returns, and `GET_STATE` agrees. `updated` and `finish` need a
//! real live update: `arrival.rs` checks them in the kernel a kexec started.

use std::path::Path;

use luo_state::{Event, State};

use crate::guest::assert_state;
use crate::{Outcome, dev, module};

/// Runs the transition checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    assert_state(&control, State::Normal, "after load")?;
    let steps = [
        (Event::Prepare, State::Prepared),
        (Event::Cancel, State::Normal),
        (Event::Prepare, State::Prepared),
        (Event::Freeze, State::Frozen),
        (Event::Cancel, State::Normal),
    ];
    for (event, expected) in steps {
        dev::trigger(&control, event)?;
        assert_state(&control, expected, &format!("right after {event}"))?;
    }
    Ok(())
}
