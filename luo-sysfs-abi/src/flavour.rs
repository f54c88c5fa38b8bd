//! The two flavours of luo, as the `flavour` attribute names them.

use core::fmt;

/// Who runs the live update that `state` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// luo's own v3 state machine: `/dev/liveupdate` takes `GET_STATE` and `SET_EVENT`, and
    /// luo's record crosses the kexec.
    Standalone,
    /// mainline's session-based orchestrator (`liveupdate=on`) owns `/dev/liveupdate`; luo
    /// derives the state from its sessions and changes nothing.
    Observer,
}

impl Flavour {
    /// Both flavours.
    pub const ALL: [Flavour; 2] = [Flavour::Standalone, Flavour::Observer];

    /// The word the attribute shows (without its newline).
    pub const fn word(self) -> &'static str {
        match self {
            Flavour::Standalone => "standalone",
            Flavour::Observer => "observer",
        }
    }

    /// The flavour named by `word`, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|flavour| flavour.word() == word)
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_names_its_flavour() {
        for flavour in Flavour::ALL {
            assert_eq!(Flavour::from_word(flavour.word()), Some(flavour));
        }
        assert_eq!(Flavour::from_word("observer\n"), None);
    }
}
