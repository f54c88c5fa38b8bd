//! The v3 state machine written down again, as data, from the series' table rather than from
//! `luo-state`: the kernel tests compare the module against this, so a wrong entry in the
//! shared transition code cannot pass for right in both.

use luo_state::{Event, State};

/// (from, event, to); every pair not listed is refused with `EINVAL`.
pub const TABLE: [(State, Event, State); 5] = [
    (State::Normal, Event::Prepare, State::Prepared),
    (State::Prepared, Event::Freeze, State::Frozen),
    (State::Prepared, Event::Cancel, State::Normal),
    (State::Frozen, Event::Cancel, State::Normal),
    (State::Updated, Event::Finish, State::Normal),
];

/// `EINVAL`, the answer to every refused event.
pub const EINVAL: i32 = 22;

/// What the table says `event` does in `state`.
pub fn next(state: State, event: Event) -> Option<State> {
    TABLE
        .iter()
        .find(|(from, ev, _)| *from == state && *ev == event)
        .map(|(_, _, to)| *to)
}

/// What `SET_EVENT` with the raw number `raw` must answer in `state`: userspace may not send
/// FREEZE, and an unknown number is refused like a disallowed event.
pub fn set_event(state: State, raw: u32) -> Result<State, i32> {
    match Event::from_u32(raw) {
        Some(Event::Freeze) | None => Err(EINVAL),
        Some(event) => next(state, event).ok_or(EINVAL),
    }
}
