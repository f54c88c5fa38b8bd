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
        (Some(Event::Prepare), State::Prepared),
        (Some(Event::Cancel), State::Normal),
        (Some(Event::Prepare), State::Prepared),
        (None, State::Frozen),
        (Some(Event::Cancel), State::Normal),
    ];
    for (event, expected) in steps {
        let context = match event {
            Some(event) => {
                dev::set_event(&control, event)
                    .map_err(|e| format!("SET_EVENT {event}: errno {e}"))?;
                format!("right after SET_EVENT {event}")
            }
            None => {
                dev::selftest_freeze().map_err(|e| format!("test hook freeze: errno {e}"))?;
                "right after the test hook's freeze".to_owned()
            }
        };
        assert_state(&control, expected, &context)?;
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
    dev::set_event(&control, Event::Finish).map_err(|e| format!("SET_EVENT finish: errno {e}"))?;
    assert_state(&control, State::Normal, "right after SET_EVENT finish")
}
