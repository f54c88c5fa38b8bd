//! The events that move the orchestrator: their numbers in the v3 uapi and their words.

use core::fmt;

/// An event of the live update orchestrator, numbered as in the v3 uapi
/// (`enum liveupdate_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Event {
    /// Start a live update: `normal` to `prepared`.
    Prepare = 0,
    /// Enter the blackout window: `prepared` to `frozen`. Raised by the kernel's kexec reboot
    /// path (or the test hook), never accepted from `SET_EVENT`.
    Freeze = 1,
    /// Restoration is complete: `updated` to `normal`.
    Finish = 2,
    /// Abandon the live update: `prepared` or `frozen` to `normal`.
    Cancel = 3,
}

/// A number that names no [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEvent(pub u32);

impl Event {
    /// Every event, in uapi order.
    pub const ALL: [Event; 4] = [Event::Prepare, Event::Freeze, Event::Finish, Event::Cancel];

    /// The uapi number of this event.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The event with uapi number `raw`, if there is one.
    pub const fn from_u32(raw: u32) -> Option<Event> {
        match raw {
            0 => Some(Event::Prepare),
            1 => Some(Event::Freeze),
            2 => Some(Event::Finish),
            3 => Some(Event::Cancel),
            _ => None,
        }
    }

    /// The word that names this event in logs and on the command line.
    pub const fn word(self) -> &'static str {
        match self {
            Event::Prepare => "prepare",
            Event::Freeze => "freeze",
            Event::Finish => "finish",
            Event::Cancel => "cancel",
        }
    }

    /// The event named by exactly `word`.
    pub fn from_word(word: &[u8]) -> Option<Event> {
        Event::ALL
            .into_iter()
            .find(|event| event.word().as_bytes() == word)
    }

    /// Whether userspace may send this event through `SET_EVENT`.
    ///
    /// The freeze belongs to the kernel: it happens because a kexec reboot is under way, so a
    /// process cannot ask for it (v3 answers `EINVAL`).
    pub const fn userspace_may_send(self) -> bool {
        !matches!(self, Event::Freeze)
    }
}

impl TryFrom<u32> for Event {
    type Error = UnknownEvent;

    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        Event::from_u32(raw).ok_or(UnknownEvent(raw))
    }
}

impl From<Event> for u32 {
    fn from(event: Event) -> u32 {
        event.as_u32()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl fmt::Display for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event number {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_v3_uapi() {
        assert_eq!(Event::ALL.map(Event::as_u32), [0, 1, 2, 3]);
    }

    #[test]
    fn every_number_converts_back_to_its_event() {
        for event in Event::ALL {
            assert_eq!(Event::try_from(event.as_u32()), Ok(event));
        }
        assert_eq!(Event::try_from(4), Err(UnknownEvent(4)));
    }

    #[test]
    fn every_word_converts_back_to_its_event() {
        for event in Event::ALL {
            assert_eq!(Event::from_word(event.word().as_bytes()), Some(event));
        }
        assert_eq!(Event::from_word(b"Prepare"), None);
    }

    #[test]
    fn only_freeze_is_kept_from_userspace() {
        let refused: [bool; 4] = Event::ALL.map(|e| !e.userspace_may_send());
        assert_eq!(refused, [false, true, false, false]);
    }
}
