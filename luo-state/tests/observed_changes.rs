//! Random sequences of what a user can do with mainline LUO's sessions derive only the changes
//! that the observer's table allows, and every change in the table can be derived.
//!
//! The model here is written from mainline's ABI, not from `Sessions`: sessions hold files,
//! an outgoing session's files go when it is closed, an incoming session's files go when it is
//! finished or closed (once), and a kexec serializes whatever is there. The hooks report each of
//! those as a [`Step`]; the test feeds the steps to [`Sessions`] and checks the changes.

use luo_state::observed::{observed_change_allowed, Sessions, Step};
use luo_state::State;
use proptest::prelude::*;

/// One thing a user (or the kernel) does.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Create an outgoing session (empty sessions count for nothing).
    Create,
    /// Preserve a file in the outgoing session of this index (modulo their number).
    Preserve(usize),
    /// Close the outgoing session of this index.
    Close(usize),
    /// Finish (or close) the incoming session of this index.
    Finish(usize),
    /// Run the kexec's serialization.
    Kexec,
}

/// Mainline's sessions, as the user sees them.
struct Model {
    outgoing: Vec<u64>,
    incoming: Vec<u64>,
    serialized: bool,
}

impl Model {
    /// What `action` does, and the step the observer hook reports for it, if any.
    fn act(&mut self, action: Action) -> Option<Step> {
        if self.serialized {
            // Every session ioctl waits on the serialization from then on.
            return None;
        }
        match action {
            Action::Create => {
                self.outgoing.push(0);
                None
            }
            Action::Preserve(i) if !self.outgoing.is_empty() => {
                let n = self.outgoing.len();
                self.outgoing[i % n] += 1;
                Some(Step::Preserved(1))
            }
            Action::Close(i) if !self.outgoing.is_empty() => {
                let n = self.outgoing.len();
                let files = self.outgoing.remove(i % n);
                (files > 0).then_some(Step::Unpreserved(files))
            }
            Action::Finish(i) if !self.incoming.is_empty() => {
                let n = self.incoming.len();
                let files = std::mem::take(&mut self.incoming[i % n]);
                (files > 0).then_some(Step::Finished(files))
            }
            Action::Kexec => {
                self.serialized = true;
                Some(Step::Serialized)
            }
            _ => None,
        }
    }
}

fn any_action() -> impl Strategy<Value = Action> {
    // A kexec is rarer: it ends the sequence's interesting part.
    prop_oneof![
        3 => Just(Action::Create),
        3 => (0..8usize).prop_map(Action::Preserve),
        3 => (0..8usize).prop_map(Action::Close),
        3 => (0..8usize).prop_map(Action::Finish),
        1 => Just(Action::Kexec),
    ]
}

/// Runs `actions` from a boot with `incoming` sessions, returning every derived change.
fn changes(incoming: &[u64], actions: &[Action]) -> Vec<(State, State)> {
    let mut model = Model {
        outgoing: Vec::new(),
        incoming: incoming.to_vec(),
        serialized: false,
    };
    let mut sessions = Sessions::at_boot(incoming.iter().sum());
    let mut state = sessions.state();
    let mut seen = Vec::new();
    for action in actions {
        if let Some(step) = model.act(*action) {
            sessions
                .apply(step)
                .expect("a step of the model is never inconsistent");
        }
        let next = sessions.state();
        if next != state {
            seen.push((state, next));
            state = next;
        }
    }
    seen
}

proptest! {
    #[test]
    fn every_derived_change_is_in_the_table(
        incoming in prop::collection::vec(0..3u64, 0..4),
        actions in prop::collection::vec(any_action(), 0..60),
    ) {
        for (from, to) in changes(&incoming, &actions) {
            prop_assert!(observed_change_allowed(from, to), "{from} -> {to}");
        }
    }

    #[test]
    fn a_boot_is_updated_exactly_when_a_handed_over_session_holds_files(
        incoming in prop::collection::vec(0..3u64, 0..4),
    ) {
        let expected = if incoming.iter().any(|&n| n > 0) { State::Updated } else { State::Normal };
        prop_assert_eq!(Sessions::at_boot(incoming.iter().sum()).state(), expected);
    }
}

/// A boot's incoming sessions, what is done, and the last change it must derive.
type Case = (&'static [u64], &'static [Action], (State, State));

#[test]
fn every_change_in_the_table_can_be_derived() {
    use Action::*;
    let cases: [Case; 7] = [
        (
            &[],
            &[Create, Preserve(0)],
            (State::Normal, State::Prepared),
        ),
        (&[], &[Kexec], (State::Normal, State::Frozen)),
        (
            &[],
            &[Create, Preserve(0), Close(0)],
            (State::Prepared, State::Normal),
        ),
        (
            &[],
            &[Create, Preserve(0), Kexec],
            (State::Prepared, State::Frozen),
        ),
        (&[1], &[Finish(0)], (State::Updated, State::Normal)),
        (
            &[1],
            &[Create, Preserve(0), Finish(0)],
            (State::Updated, State::Prepared),
        ),
        (&[1], &[Kexec], (State::Updated, State::Frozen)),
    ];
    let mut covered = Vec::new();
    for (incoming, actions, expected) in cases {
        let seen = changes(incoming, actions);
        assert_eq!(seen.last(), Some(&expected), "{actions:?}");
        covered.push(expected);
    }
    for from in State::ALL {
        for to in State::ALL {
            if observed_change_allowed(from, to) {
                assert!(
                    covered.contains(&(from, to)),
                    "{from} -> {to} is never derived"
                );
            }
        }
    }
}
