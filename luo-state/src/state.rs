//! The orchestrator's states: their numbers in the v3 uapi and their words in sysfs.

use core::fmt;

/// A state of the live update orchestrator, numbered as in the v3 uapi
/// (`enum liveupdate_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum State {
    /// Before the orchestrator has initialised; never shown once it has.
    Undefined = 0,
    /// No live update is in progress.
    Normal = 1,
    /// Userspace asked to prepare; the system waits for the kexec reboot.
    Prepared = 2,
    /// The kexec reboot is under way: the blackout window.
    Frozen = 3,
    /// This kernel was booted by a live update; restoration runs until `finish`.
    Updated = 4,
}

/// A number that names no [`State`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownState(pub u32);

impl State {
    /// Every state, in uapi order.
    pub const ALL: [State; 5] = [
        State::Undefined,
        State::Normal,
        State::Prepared,
        State::Frozen,
        State::Updated,
    ];

    /// The states an initialised orchestrator can be in: the words sysfs documents.
    pub const OBSERVABLE: [State; 4] = [
        State::Normal,
        State::Prepared,
        State::Frozen,
        State::Updated,
    ];

    /// The uapi number of this state.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The state with uapi number `raw`, if there is one.
    pub const fn from_u32(raw: u32) -> Option<State> {
        match raw {
            0 => Some(State::Undefined),
            1 => Some(State::Normal),
            2 => Some(State::Prepared),
            3 => Some(State::Frozen),
            4 => Some(State::Updated),
            _ => None,
        }
    }

    /// The word that names this state in sysfs and on the command line.
    pub const fn word(self) -> &'static str {
        match self {
            State::Undefined => "undefined",
            State::Normal => "normal",
            State::Prepared => "prepared",
            State::Frozen => "frozen",
            State::Updated => "updated",
        }
    }

    /// The state named by exactly `word` (no whitespace, no newline, case-sensitive).
    pub fn from_word(word: &[u8]) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|state| state.word().as_bytes() == word)
    }
}

impl TryFrom<u32> for State {
    type Error = UnknownState;

    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        State::from_u32(raw).ok_or(UnknownState(raw))
    }
}

impl From<State> for u32 {
    fn from(state: State) -> u32 {
        state.as_u32()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown state number {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_v3_uapi() {
        let numbers = State::ALL.map(State::as_u32);
        assert_eq!(numbers, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn every_number_converts_back_to_its_state() {
        for state in State::ALL {
            assert_eq!(State::try_from(state.as_u32()), Ok(state));
        }
    }

    #[test]
    fn numbers_past_the_last_state_are_refused() {
        assert_eq!(State::try_from(5), Err(UnknownState(5)));
        assert_eq!(State::try_from(u32::MAX), Err(UnknownState(u32::MAX)));
    }

    #[test]
    fn every_word_converts_back_to_its_state() {
        for state in State::ALL {
            assert_eq!(State::from_word(state.word().as_bytes()), Some(state));
        }
    }

    #[test]
    fn words_must_match_exactly() {
        assert_eq!(State::from_word(b"normal\n"), None);
        assert_eq!(State::from_word(b"Normal"), None);
        assert_eq!(State::from_word(b" normal"), None);
        assert_eq!(State::from_word(b""), None);
    }
}
