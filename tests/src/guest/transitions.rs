//! Test 2: every transition, by ioctl and by the test hook, and `finish` after a load that
//! found a handover; sysfs shows the new word as soon as the call returns, and `GET_STATE`
//! agrees.

use std::path::Path;

use luo_state::{Event, State};

use crate::guest::assert_state;
use crate::{Outcome, dev, ensure, module, v3_table};

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
    drop(control);
    after_a_handover(ko)
}

/// A load that finds a handover starts in `updated`, refuses everything but `finish`, and
/// `finish` returns to `normal`.
fn after_a_handover(ko: &Path) -> Outcome {
    module::rmmod()?;
    module::insmod(ko, &["handover=1"])?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    assert_state(&control, State::Updated, "after a load with handover=1")?;
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
    dev::trigger(&control, Event::Finish)?;
    assert_state(&control, State::Normal, "right after SET_EVENT finish")
}
