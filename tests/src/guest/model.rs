//! Test 5: thousands of random events, allowed and not, applied to the module and to a model
//! side by side; after each one the sysfs word, `GET_STATE` and the model agree. The model is
//! `v3_table`, written apart from the transition code the module compiles.

use std::path::Path;

use luo_state::{Event, State};

use crate::v3_table::{self, EINVAL};
use crate::{Outcome, dev, ensure, module, sysfs};

const EVENTS: usize = 10_000;

/// SplitMix64: a tiny seeded generator, so a failing run can be replayed with `LUO_SEED`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn seed() -> u64 {
    if let Some(seed) = std::env::var("LUO_SEED").ok().and_then(|s| s.parse().ok()) {
        return seed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Runs the model-based test with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let seed = seed();
    println!("note: model seed {seed} (replay with LUO_SEED={seed})");
    let mut rng = SplitMix(seed);
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    let state_file = sysfs::open().map_err(|err| format!("opening state: {err}"))?;
    let mut model = State::Normal;
    let mut refused = 0;
    for step in 0..EVENTS {
        // Raw numbers 0..=5: the four events, one unknown number, and the test hook's freeze.
        let pick = rng.next() % 6;
        let (what, got, expected) = if pick == 5 {
            let expected = v3_table::next(model, Event::Freeze).ok_or(EINVAL);
            ("hook freeze".to_owned(), dev::selftest_freeze(), expected)
        } else {
            let raw = pick as u32;
            let expected = v3_table::set_event(model, raw);
            (
                format!("SET_EVENT {raw}"),
                dev::set_event_raw(&control, raw),
                expected,
            )
        };
        ensure!(
            got.is_ok() == expected.is_ok() && got.err() == expected.err(),
            "step {step} (seed {seed}): {what} in '{model}' answered {got:?}, the model says {expected:?}"
        );
        match expected {
            Ok(next) => model = next,
            Err(_) => refused += 1,
        }
        let shown = sysfs::read(&state_file)?;
        let reported = dev::get_state(&control)?;
        ensure!(
            shown == model && reported == model,
            "step {step} (seed {seed}) after {what}: sysfs '{shown}', GET_STATE '{reported}', model '{model}'"
        );
    }
    println!("note: model: {EVENTS} events, {refused} refused, final state '{model}'");
    Ok(())
}
