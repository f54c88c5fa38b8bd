//! The transition rules of the v3 state machine, as pure functions.

use core::fmt;

use crate::{Event, State};

/// An event that the current state does not accept; the state stays as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitionError {
    /// The state the orchestrator was (and still is) in.
    pub state: State,
    /// The event it refused.
    pub event: Event,
}

/// The state that `event` leads to from `state`, or the error naming both when the event is
/// not allowed there.
///
/// This is the whole table: every other pair is refused, and a refusal never changes the
/// state. Who may raise an event is a separate question ([`Event::userspace_may_send`]).
pub const fn next_state(state: State, event: Event) -> Result<State, TransitionError> {
    match (state, event) {
        (State::Normal, Event::Prepare) => Ok(State::Prepared),
        (State::Prepared, Event::Freeze) => Ok(State::Frozen),
        (State::Prepared | State::Frozen, Event::Cancel) => Ok(State::Normal),
        (State::Updated, Event::Finish) => Ok(State::Normal),
        _ => Err(TransitionError { state, event }),
    }
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event '{}' is not allowed in state '{}'",
            self.event, self.state
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_leads_from_normal_to_prepared() {
        assert_eq!(
            next_state(State::Normal, Event::Prepare),
            Ok(State::Prepared)
        );
    }

    #[test]
    fn freeze_leads_from_prepared_to_frozen() {
        assert_eq!(
            next_state(State::Prepared, Event::Freeze),
            Ok(State::Frozen)
        );
    }

    #[test]
    fn cancel_returns_to_normal_from_prepared_and_frozen() {
        assert_eq!(
            next_state(State::Prepared, Event::Cancel),
            Ok(State::Normal)
        );
        assert_eq!(next_state(State::Frozen, Event::Cancel), Ok(State::Normal));
    }

    #[test]
    fn finish_leads_from_updated_to_normal() {
        assert_eq!(next_state(State::Updated, Event::Finish), Ok(State::Normal));
    }

    #[test]
    fn exactly_five_pairs_are_allowed() {
        let allowed = State::ALL
            .iter()
            .flat_map(|s| Event::ALL.iter().map(move |e| (*s, *e)))
            .filter(|(s, e)| next_state(*s, *e).is_ok())
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn a_refusal_names_state_and_event() {
        let err = next_state(State::Updated, Event::Prepare).unwrap_err();
        assert_eq!(
            err,
            TransitionError {
                state: State::Updated,
                event: Event::Prepare
            }
        );
    }
}
