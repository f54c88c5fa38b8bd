//! Random event sequences through `luo-state` agree with an independent, table-driven model of
//! the v3 state machine (written from the v3 series' table, not from `next_state`).

use luo_state::ioctl::{self, AbiError};
use luo_state::{next_state, Event, State};
use proptest::prelude::*;

/// The v3 table as data: (from, event, to). Every pair not listed is refused.
const TABLE: [(State, Event, State); 5] = [
    (State::Normal, Event::Prepare, State::Prepared),
    (State::Prepared, Event::Freeze, State::Frozen),
    (State::Prepared, Event::Cancel, State::Normal),
    (State::Frozen, Event::Cancel, State::Normal),
    (State::Updated, Event::Finish, State::Normal),
];

fn model(state: State, event: Event) -> Option<State> {
    TABLE
        .iter()
        .find(|(from, ev, _)| *from == state && *ev == event)
        .map(|(_, _, to)| *to)
}

fn any_state() -> impl Strategy<Value = State> {
    prop::sample::select(State::ALL.to_vec())
}

fn any_event() -> impl Strategy<Value = Event> {
    prop::sample::select(Event::ALL.to_vec())
}

proptest! {
    #[test]
    fn sequences_agree_with_the_table(start in any_state(), events in prop::collection::vec(any_event(), 0..200)) {
        let mut state = start;
        for event in events {
            match (next_state(state, event), model(state, event)) {
                (Ok(next), Some(expected)) => {
                    prop_assert_eq!(next, expected);
                    state = next;
                }
                (Err(err), None) => {
                    prop_assert_eq!((err.state, err.event), (state, event));
                }
                (got, expected) => {
                    prop_assert!(false, "{state} + {event}: got {got:?}, table says {expected:?}");
                }
            }
        }
    }

    #[test]
    fn set_event_agrees_with_the_table_for_userspace(state in any_state(), raw in 0u32..8) {
        let got = ioctl::set_event(state, raw);
        match Event::from_u32(raw) {
            None => prop_assert_eq!(got, Err(AbiError::UnknownEvent(raw))),
            Some(Event::Freeze) => prop_assert_eq!(got, Err(AbiError::EventNotFromUserspace(Event::Freeze))),
            Some(event) => match model(state, event) {
                Some(to) => prop_assert_eq!(got, Ok(to)),
                None => prop_assert_eq!(got.map_err(|e| e.errno()), Err(ioctl::EINVAL)),
            },
        }
    }
}
