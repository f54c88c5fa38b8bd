//! Sets of states, for waiting until the orchestrator reaches one of several states.
//!
//! Userspace only: the kernel module does not compile this file (it uses `bitflags`).

use core::fmt;

use crate::State;

bitflags::bitflags! {
    /// A set of [`State`]s, one bit per uapi number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct StateSet: u8 {
        /// [`State::Undefined`].
        const UNDEFINED = 1 << State::Undefined as u8;
        /// [`State::Normal`].
        const NORMAL = 1 << State::Normal as u8;
        /// [`State::Prepared`].
        const PREPARED = 1 << State::Prepared as u8;
        /// [`State::Frozen`].
        const FROZEN = 1 << State::Frozen as u8;
        /// [`State::Updated`].
        const UPDATED = 1 << State::Updated as u8;
    }
}

/// A word in a comma-separated list that names no state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseStateSetError<'a> {
    /// The offending word, as written (empty for `a,,b` or an empty list).
    pub word: &'a str,
}

impl StateSet {
    /// The set that holds only `state`.
    pub const fn of(state: State) -> Self {
        StateSet::from_bits_retain(1 << state as u8)
    }

    /// Whether `state` is in the set.
    pub const fn has(self, state: State) -> bool {
        self.contains(StateSet::of(state))
    }

    /// The states in the set, in uapi order.
    pub fn states(self) -> impl Iterator<Item = State> {
        State::ALL.into_iter().filter(move |state| self.has(*state))
    }

    /// Parses `normal,prepared`: words of observable states (the four sysfs shows) separated
    /// by commas, at least one. `undefined` is refused: no watcher can ever see it.
    pub fn parse_list(list: &str) -> Result<Self, ParseStateSetError<'_>> {
        list.split(',').try_fold(StateSet::empty(), |set, word| {
            State::from_word(word.as_bytes())
                .filter(|state| State::OBSERVABLE.contains(state))
                .map(|state| set | StateSet::of(state))
                .ok_or(ParseStateSetError { word })
        })
    }
}

impl From<State> for StateSet {
    fn from(state: State) -> Self {
        StateSet::of(state)
    }
}

impl fmt::Display for StateSet {
    /// The set as the list [`StateSet::parse_list`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, state) in self.states().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(state.word())?;
        }
        Ok(())
    }
}

impl fmt::Display for ParseStateSetError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a state (expected a comma-separated list of: normal, prepared, frozen, updated)",
            self.word
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_parses_to_the_states_it_names() {
        let set = StateSet::parse_list("frozen,normal").unwrap();
        assert_eq!(set, StateSet::FROZEN | StateSet::NORMAL);
        assert!(set.has(State::Normal));
        assert!(!set.has(State::Prepared));
    }

    #[test]
    fn an_unknown_word_is_named_in_the_error() {
        assert_eq!(
            StateSet::parse_list("normal,frozn"),
            Err(ParseStateSetError { word: "frozn" })
        );
        assert_eq!(
            StateSet::parse_list(""),
            Err(ParseStateSetError { word: "" })
        );
    }

    #[test]
    fn display_lists_states_in_uapi_order_and_parses_back() {
        let set = StateSet::UPDATED | StateSet::NORMAL;
        let text = std::format!("{set}");
        assert_eq!(text, "normal,updated");
        assert_eq!(StateSet::parse_list(&text), Ok(set));
    }
}
