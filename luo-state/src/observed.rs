//! The observer flavour: the state of a live update that mainline's orchestrator (LUO) runs,
//! derived from what its sessions hold.
//!
//! Mainline LUO has sessions, not a state machine. Built in beside it, luo follows four steps of
//! its lifecycle ([`Step`]), keeps three numbers ([`Sessions`]) and derives the state from them
//! by precedence ([`Sessions::state`]). Mainline allows moves that the v3 table does not (a
//! file preserved while `updated`, a kexec from `updated` or with nothing preserved), so the
//! derived changes have a table of their own ([`observed_change_allowed`]), and the tests show
//! that no sequence of steps derives a change outside it.

use core::fmt;

use crate::State;

/// One step of mainline LUO's lifecycle, as its observer hook reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Files were preserved in an outgoing session.
    Preserved(u64),
    /// An outgoing session was closed, and this many files with it are no longer preserved.
    Unpreserved(u64),
    /// An incoming session that held this many files was finished or closed.
    Finished(u64),
    /// The sessions were serialized for the kexec; nothing changes in this kernel after it.
    Serialized,
}

/// A step that the counts cannot have produced: more files unpreserved or finished than the
/// observer counted. The counts stop at zero, and the caller reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inconsistent(pub Step);

impl fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} takes away more files than were counted", self.0)
    }
}

/// What the observer knows of mainline LUO's sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sessions {
    /// Files preserved in outgoing sessions (sessions this kernel hands over).
    pub outgoing_files: u64,
    /// Files of incoming sessions (handed over by the previous kernel) not yet finished.
    pub incoming_files: u64,
    /// The sessions were serialized for the kexec.
    pub serialized: bool,
}

impl Sessions {
    /// The sessions at boot: the previous kernel's files, nothing preserved, nothing serialized.
    ///
    /// Empty sessions count for nothing, so a kexec that handed over no file (or no session
    /// at all) comes up `normal`: mainline hands its data over on every kexec with KHO.
    pub const fn at_boot(incoming_files: u64) -> Self {
        Self {
            outgoing_files: 0,
            incoming_files,
            serialized: false,
        }
    }

    /// The derived state, by precedence: `frozen` once serialized, else `updated` while an
    /// incoming file is unfinished, else `prepared` while a file is preserved, else `normal`.
    pub const fn state(&self) -> State {
        if self.serialized {
            State::Frozen
        } else if self.incoming_files > 0 {
            State::Updated
        } else if self.outgoing_files > 0 {
            State::Prepared
        } else {
            State::Normal
        }
    }

    /// Applies `step`. A count that would go below zero stays at zero, and the step is
    /// reported as [`Inconsistent`]; the state is still derived from the counts.
    pub fn apply(&mut self, step: Step) -> Result<(), Inconsistent> {
        let (count, by, add) = match step {
            Step::Preserved(n) => (&mut self.outgoing_files, n, true),
            Step::Unpreserved(n) => (&mut self.outgoing_files, n, false),
            Step::Finished(n) => (&mut self.incoming_files, n, false),
            Step::Serialized => {
                self.serialized = true;
                return Ok(());
            }
        };
        if add {
            *count = count.saturating_add(by);
            return Ok(());
        }
        match count.checked_sub(by) {
            Some(left) => {
                *count = left;
                Ok(())
            }
            None => {
                *count = 0;
                Err(Inconsistent(step))
            }
        }
    }
}

/// Whether the observer flavour can move from `from` to `to` (`from != to`).
///
/// The v3 moves that mainline has (prepare, cancel, freeze, finish), and three of its own: a
/// kexec with nothing preserved (`normal` to `frozen`), a kexec before the incoming sessions
/// are finished (`updated` to `frozen`), and the finish of incoming sessions while files are
/// already preserved for the next kexec (`updated` to `prepared`). `frozen` is final: the
/// serialization holds LUO's sessions until the jump. `updated` is only where a boot starts.
pub const fn observed_change_allowed(from: State, to: State) -> bool {
    matches!(
        (from, to),
        (State::Normal, State::Prepared | State::Frozen)
            | (State::Prepared, State::Normal | State::Frozen)
            | (
                State::Updated,
                State::Normal | State::Prepared | State::Frozen
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_with_incoming_files_is_updated_and_without_is_normal() {
        assert_eq!(Sessions::at_boot(3).state(), State::Updated);
        assert_eq!(Sessions::at_boot(0).state(), State::Normal);
    }

    #[test]
    fn preserving_prepares_and_closing_the_session_cancels() {
        let mut s = Sessions::at_boot(0);
        s.apply(Step::Preserved(1)).unwrap();
        assert_eq!(s.state(), State::Prepared);
        s.apply(Step::Unpreserved(1)).unwrap();
        assert_eq!(s.state(), State::Normal);
    }

    #[test]
    fn serialized_is_frozen_whatever_the_counts() {
        for incoming in [0, 2] {
            let mut s = Sessions::at_boot(incoming);
            s.apply(Step::Serialized).unwrap();
            assert_eq!(s.state(), State::Frozen);
        }
    }

    #[test]
    fn updated_comes_before_prepared_until_the_incoming_files_finish() {
        let mut s = Sessions::at_boot(2);
        s.apply(Step::Preserved(1)).unwrap();
        assert_eq!(s.state(), State::Updated);
        s.apply(Step::Finished(2)).unwrap();
        assert_eq!(s.state(), State::Prepared);
    }

    #[test]
    fn taking_away_more_than_counted_is_reported_and_stops_at_zero() {
        let mut s = Sessions::at_boot(1);
        assert_eq!(
            s.apply(Step::Finished(2)),
            Err(Inconsistent(Step::Finished(2)))
        );
        assert_eq!(s.incoming_files, 0);
        assert_eq!(s.state(), State::Normal);
    }

    #[test]
    fn frozen_and_updated_are_never_entered_from_elsewhere_but_frozen_is() {
        for from in State::ALL {
            assert!(!observed_change_allowed(from, State::Updated));
            assert!(!observed_change_allowed(State::Frozen, from));
            assert!(!observed_change_allowed(from, from));
        }
    }

    #[test]
    fn every_v3_move_but_cancel_from_frozen_is_allowed() {
        // Mainline cannot cancel a serialization: it holds until the jump.
        for (from, to) in [
            (State::Normal, State::Prepared),
            (State::Prepared, State::Frozen),
            (State::Prepared, State::Normal),
            (State::Updated, State::Normal),
        ] {
            assert!(observed_change_allowed(from, to), "{from} -> {to}");
        }
        assert!(!observed_change_allowed(State::Frozen, State::Normal));
    }
}
