//! The hooks agent: follows the state and runs the hooks of each state it reaches, cancelling a
//! live update whose `prepared` hooks fail and finishing one whose `updated` hooks succeed.
//!
//! - `prepared`: runs `prepared.d/` in order and stops at the first failure; then sends
//!   CANCEL, so the state goes back to `normal` and nothing half-saved is kexec'd.
//! - `updated`: runs `updated.d/` in order and stops at the first failure; then the state
//!   stays `updated` (no FINISH) for a person to look. When every hook succeeded, sends FINISH
//!   (unless told not to).
//! - `frozen` and `normal`: runs every hook of the directory; failures are reported only.
//!
//! At start, the agent runs the hooks of the state it finds if that state asks something of
//! the agents (`prepared`: save; `updated`: restore and finish), or of any state when told to
//! ([`Agent::initial`]). The agent reports everything it does through a callback, so the
//! caller decides how to log; `luoctl agent` is one such caller.
//!
//! The agent opens the control device only to send an event, and closes it at once: the
//! device admits one opener, and `luoctl prepare` must not find it busy. For the same reason
//! a cancel or finish that fails (`EBUSY`, most often) is tried again with a [`Backoff`]
//! while the state still calls for it; how it ended is a [`Delivery`].
//!
//! [`Agent::run`] returns a [`Summary`]: how many hooks failed and how many events could not
//! be sent, so a caller can tell a run that went wrong from one that did not.

mod retry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use luo_state::{Event, State};

use crate::control::Control;
use crate::error::{Error, Result};
use crate::follow::{Followed, Follower};
use crate::generation::read_generation;
use crate::hooks::{self, Hook, HookEnv, HooksDir, OpenError, Outcome, Stop, failure};
use crate::keeper::{Keeper, Mark};
use crate::session::SessionError;
use crate::state_file::StateFile;
use crate::transitions::Snapshot;
use crate::watch::Change;

pub use retry::{Backoff, Delivery, Retrying};

/// How long a hook may run, unless told otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// What the agent does, as it does it.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentEvent<'a> {
    /// The state file was opened and read; `first` for the first time.
    Attached {
        /// The path.
        path: &'a Path,
        /// The state read.
        state: State,
        /// Whether this is the first read since the agent started.
        first: bool,
    },
    /// The state file went away or is not there; the agent waits for it (when following).
    Detached {
        /// Why.
        error: &'a Error,
    },
    /// Changes the agent did not see: they came between two of its reads, which coalesce
    /// (the transition counter tells). The hooks of the states in between did not run, and
    /// cannot any more: those states are over.
    Missed {
        /// How many changes were not seen.
        missed: u64,
        /// The state acted on before.
        from: State,
        /// The state acted on now.
        to: State,
    },
    /// A state the agent acts on: a change, or the state found at start (`prev` is `None`).
    State {
        /// The state.
        state: State,
        /// The state before, if this is a change.
        prev: Option<State>,
        /// The change's number (0 for the state found at start).
        seq: u64,
        /// When it was read.
        time: SystemTime,
        /// The kernel's transition count at this state, when it counts.
        transitions: Option<u64>,
    },
    /// A file in a state's directory that will not run, and why.
    Skipped {
        /// The file.
        path: &'a Path,
        /// Why it does not run.
        reason: &'static str,
    },
    /// A state's directory could not be read, or it or the hooks directory is not trusted.
    Unreadable {
        /// The directory.
        dir: &'a Path,
        /// Why.
        error: &'a OpenError,
    },
    /// A hook refused because it, or what it leads to, is not trusted or could not be
    /// opened; none of the state's hooks run then.
    Refused {
        /// Why, with the path and the fix.
        error: &'a OpenError,
    },
    /// A hook starts.
    HookStarted {
        /// The hook.
        hook: &'a Hook,
    },
    /// A hook ended.
    HookEnded {
        /// The hook.
        hook: &'a Hook,
        /// How.
        outcome: &'a Outcome,
        /// After how long.
        elapsed: Duration,
    },
    /// CANCEL or FINISH failed and will be tried again.
    Retrying(Retrying<'a>),
    /// A `prepared` hook failed (or the directory could not be read or trusted), and the agent
    /// sent CANCEL.
    Cancelled {
        /// The hook that failed, if one did.
        hook: Option<&'a Hook>,
        /// How sending CANCEL ended.
        result: &'a Delivery,
    },
    /// An `updated` hook failed (or the directory could not be read): no FINISH, the state
    /// stays `updated`.
    FinishWithheld {
        /// The hook that failed, if one did.
        hook: Option<&'a Hook>,
    },
    /// Every `updated` hook succeeded, and the agent sent FINISH.
    Finished {
        /// How sending FINISH ended.
        result: &'a Delivery,
    },
    /// Every `updated` hook succeeded; FINISH is left to someone else.
    FinishLeft,
    /// Every `prepared` hook succeeded: the kexec may go (`luoctl kexec` waits for this).
    Ready {
        /// The `prepared` state whose hooks ran.
        mark: Mark,
    },
    /// Observer flavour: a `prepared` hook failed, and the agent closed the sessions it kept,
    /// so their files are no longer preserved (mainline has no cancel).
    Unpreserved {
        /// The hook that failed, if one did.
        hook: Option<&'a Hook>,
        /// How many sessions were closed.
        sessions: usize,
    },
    /// Observer flavour: every `updated` hook succeeded, and the agent finished the sessions
    /// that their workloads claimed and restored (mainline finishes per session).
    SessionsFinished {
        /// Each session finished now, and how.
        finished: &'a [(String, std::result::Result<(), SessionError>)],
        /// Claimed sessions not restored yet: each is finished when its workload says so.
        waiting: usize,
    },
}

/// What a run of the agent came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The states acted on.
    pub states: u64,
    /// The hooks that failed, timed out or could not be started, and the states whose hooks
    /// could not be run at all (an unreadable or untrusted directory or hook).
    pub hooks_failed: u64,
    /// The cancels and finishes the hooks called for that were refused or given up on (in the
    /// observer flavour, each session whose finish failed).
    pub events_failed: u64,
}

impl Summary {
    /// Whether every hook succeeded and every event called for was sent (or was no longer
    /// needed).
    pub fn is_clean(&self) -> bool {
        self.hooks_failed == 0 && self.events_failed == 0
    }
}

/// The hooks agent's settings (see the [module](self) documentation).
#[derive(Clone, Debug)]
pub struct Agent {
    hooks: HooksDir,
    stop: Option<Stop>,
    device: PathBuf,
    generation_file: PathBuf,
    hook_timeout: Duration,
    backoff: Backoff,
    finish: bool,
    initial: bool,
    follow: bool,
    keeper: Option<Arc<Keeper>>,
}

impl Agent {
    /// An agent running the hooks of `hooks` (see [`HooksDir::open`]), with the standard
    /// device and generation paths, [`DEFAULT_HOOK_TIMEOUT`], FINISH after `updated`, not
    /// following.
    pub fn new(hooks: HooksDir) -> Self {
        Agent {
            hooks,
            stop: None,
            device: PathBuf::from(luo_sysfs_abi::path::DEVICE_PATH),
            generation_file: PathBuf::from(luo_sysfs_abi::path::GENERATION_PATH),
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            backoff: Backoff::DEFAULT,
            finish: true,
            initial: false,
            follow: false,
            keeper: None,
        }
    }

    /// Tells `keeper` where the prepared hooks stand (so `luoctl kexec` can wait for them),
    /// and, where it has mainline's sessions (the observer flavour), cancels by closing the
    /// kept sessions and finishes the restored ones instead of sending events.
    pub fn keeper(mut self, keeper: Arc<Keeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// Sends events to the control device at `device`.
    pub fn device(mut self, device: impl Into<PathBuf>) -> Self {
        self.device = device.into();
        self
    }

    /// Reads `LUO_GENERATION` for the hooks from `path`.
    pub fn generation_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.generation_file = path.into();
        self
    }

    /// Stops a hook after `timeout`.
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hook_timeout = timeout;
        self
    }

    /// Retries a failed CANCEL or FINISH after the delays of `backoff` (default
    /// [`Backoff::DEFAULT`]; [`Backoff::NONE`] tries once).
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Stops the running hook, with everything it started, when `stop` is stopped; no hook
    /// starts afterwards (see [`Stop`]).
    pub fn stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Whether to send FINISH once every `updated` hook succeeded (default: yes).
    pub fn finish(mut self, finish: bool) -> Self {
        self.finish = finish;
        self
    }

    /// Whether to run the hooks of the state found at start whatever it is (default: only
    /// for `prepared` and `updated`).
    pub fn initial(mut self, initial: bool) -> Self {
        self.initial = initial;
        self
    }

    /// Whether to wait for the state file when it is absent or goes away, and go on when it
    /// is back (default: no, that ends the agent with the error).
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// Follows the state with `follower` and acts on each state reached, until `count` states
    /// were acted on (`None`: without end) or an error.
    ///
    /// Without [`Agent::follow`], the state file's absence or removal ends the run with that
    /// error. Otherwise it returns what the run came to: failed hooks and events not sent do
    /// not end it, they are counted.
    pub fn run(
        &self,
        follower: &mut Follower<State>,
        count: Option<u64>,
        mut report: impl FnMut(AgentEvent<'_>),
    ) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut attached_before = false;
        // The last count and state acted on, to tell the changes that coalesced between reads.
        let mut last = None;
        while count.is_none_or(|count| summary.states < count) {
            let Some(followed) = follower.next_until(None)? else {
                continue;
            };
            let state_file = follower.path().to_path_buf();
            match followed {
                Followed::Detached(error) => {
                    if !self.follow {
                        return Err(error);
                    }
                    report(AgentEvent::Detached { error: &error });
                }
                Followed::Attached { current, change } => {
                    let first = !attached_before;
                    attached_before = true;
                    // Right after the follower's read and before anyone hears of it, so that no
                    // change a listener makes on hearing it can come between the two reads.
                    let attached = snapshot_of(current, &state_file);
                    report(AgentEvent::Attached {
                        path: &state_file,
                        state: current,
                        first,
                    });
                    if let Some(change) = change {
                        self.act_on_change(
                            &change,
                            &state_file,
                            &mut last,
                            &mut summary,
                            &mut report,
                        );
                    } else if first && (self.initial || asks_for_action(current)) {
                        let env = HookEnv::new(current, None, 0, SystemTime::now(), &state_file);
                        self.act(env, &mut last, &mut summary, &mut report);
                    } else if first {
                        // Not acted on, but the count to compare the next change with.
                        last = attached;
                    }
                }
                Followed::Changed(change) => {
                    self.act_on_change(&change, &state_file, &mut last, &mut summary, &mut report);
                }
            }
        }
        Ok(summary)
    }

    fn act_on_change(
        &self,
        change: &Change,
        state_file: &Path,
        last: &mut Option<Snapshot>,
        summary: &mut Summary,
        report: &mut impl FnMut(AgentEvent<'_>),
    ) {
        let env = HookEnv::new(
            change.state,
            Some(change.prev),
            change.seq,
            change.time,
            state_file,
        );
        self.act(env, last, summary, report);
    }

    /// Runs the hooks of `env.state`, sends what their outcome calls for, and counts both in
    /// `summary`.
    fn act(
        &self,
        mut env: HookEnv,
        last: &mut Option<Snapshot>,
        summary: &mut Summary,
        report: &mut impl FnMut(AgentEvent<'_>),
    ) {
        summary.states += 1;
        // The count of this state, read beside the state file (none from a module older than
        // the counter, or a state file without one): it keys the readiness mark, and it tells
        // the changes that coalesced since the last state acted on.
        let snapshot = snapshot_of(env.state, &env.state_file);
        let transitions = snapshot.map(|snapshot| snapshot.transitions);
        report(AgentEvent::State {
            state: env.state,
            prev: env.prev,
            seq: env.seq,
            time: env.time,
            transitions,
        });
        if let (Some(now), Some(before)) = (snapshot, *last) {
            if let Some(missed) = now.missed_since(&before).filter(|&missed| missed > 0) {
                report(AgentEvent::Missed {
                    missed,
                    from: before.state,
                    to: env.state,
                });
            }
        }
        if snapshot.is_some() {
            *last = snapshot;
        }
        if let Ok(generation) = read_generation(&self.generation_file) {
            env = env.with_generation(generation);
        }
        let state = env.state;
        let mark = Mark {
            transitions,
            seq: env.seq,
        };
        if let Some(keeper) = &self.keeper {
            if state == State::Prepared {
                keeper.hooks_started(mark);
            } else {
                keeper.left_prepared(state, mark);
            }
        }
        let stop_at_failure = matches!(state, State::Prepared | State::Updated);
        let dir = self.hooks.dir(state);
        // `Err(None)`: the directory could not be read; `Err(Some(hook))`: that hook failed.
        let ran: std::result::Result<(), Option<Hook>> = match self.hooks.list(state) {
            Err(error) => {
                report(AgentEvent::Unreadable {
                    dir: &dir,
                    error: &error,
                });
                summary.hooks_failed += 1;
                Err(None)
            }
            Ok(listing) if !listing.refused.is_empty() => {
                for error in &listing.refused {
                    report(AgentEvent::Refused { error });
                }
                summary.hooks_failed += 1;
                Err(None)
            }
            Ok(listing) => {
                for (path, reason) in &listing.skipped {
                    report(AgentEvent::Skipped { path, reason });
                }
                let mut first_failure = None;
                for hook in listing.hooks {
                    report(AgentEvent::HookStarted { hook: &hook });
                    let (outcome, elapsed) =
                        hooks::run_hook(&hook, &env, self.hook_timeout, self.stop.as_ref());
                    report(AgentEvent::HookEnded {
                        hook: &hook,
                        outcome: &outcome,
                        elapsed,
                    });
                    if matches!(outcome, Outcome::Stopped) {
                        // The agent is going away: neither cancel nor finish on a hook it cut
                        // short; the next agent finds the state and runs the hooks again.
                        if let Some(keeper) = &self.keeper {
                            keeper.hooks_failed(Some(mark), "the agent was stopped".to_owned());
                        }
                        return;
                    }
                    if !outcome.is_success() {
                        summary.hooks_failed += 1;
                    }
                    if !outcome.is_success() && first_failure.is_none() {
                        first_failure = Some(hook);
                        if stop_at_failure {
                            break;
                        }
                    }
                }
                first_failure.map_or(Ok(()), |hook| Err(Some(hook)))
            }
        };
        let sessions = self.keeper.as_ref().filter(|keeper| keeper.has_sessions());
        match (state, ran, sessions) {
            (State::Prepared, Ok(()), _) => {
                if let Some(keeper) = &self.keeper {
                    keeper.hooks_ready(mark);
                }
                report(AgentEvent::Ready { mark });
            }
            (State::Prepared, Err(hook), Some(keeper)) => {
                keeper.hooks_failed(Some(mark), failure(hook.as_ref(), "prepared"));
                let sessions = keeper.unpreserve();
                report(AgentEvent::Unpreserved {
                    hook: hook.as_ref(),
                    sessions,
                });
            }
            (State::Prepared, Err(hook), None) => {
                if let Some(keeper) = &self.keeper {
                    keeper.hooks_failed(Some(mark), failure(hook.as_ref(), "prepared"));
                }
                let result = self.deliver(Event::Cancel, &env.state_file, report);
                if !result.is_settled() {
                    summary.events_failed += 1;
                }
                report(AgentEvent::Cancelled {
                    hook: hook.as_ref(),
                    result: &result,
                });
            }
            (State::Updated, Err(hook), _) => report(AgentEvent::FinishWithheld {
                hook: hook.as_ref(),
            }),
            (State::Updated, Ok(()), Some(keeper)) if self.finish => {
                let (finished, waiting) = keeper.allow_finish();
                summary.events_failed += finished.iter().filter(|(_, r)| r.is_err()).count() as u64;
                report(AgentEvent::SessionsFinished {
                    finished: &finished,
                    waiting,
                });
            }
            (State::Updated, Ok(()), None) if self.finish => {
                let result = self.deliver(Event::Finish, &env.state_file, report);
                if !result.is_settled() {
                    summary.events_failed += 1;
                }
                report(AgentEvent::Finished { result: &result });
            }
            (State::Updated, Ok(()), _) => report(AgentEvent::FinishLeft),
            _ => {}
        }
    }

    /// Sends `event`, retrying while the state in `state_file` calls for it.
    fn deliver(
        &self,
        event: Event,
        state_file: &Path,
        report: &mut impl FnMut(AgentEvent<'_>),
    ) -> Delivery {
        retry::deliver(
            event,
            self.backoff,
            // Opened for each try and closed at once: the device admits one opener.
            || Control::open(&self.device)?.send(event),
            || StateFile::open(state_file)?.state(),
            |delay| self.pause(delay),
            |retrying| report(AgentEvent::Retrying(retrying)),
        )
    }

    /// Waits `delay`; false when the agent was stopped meanwhile (or before).
    fn pause(&self, delay: Duration) -> bool {
        let Some(stop) = &self.stop else {
            std::thread::sleep(delay);
            return true;
        };
        if stop.is_stopped() {
            return false;
        }
        let timeout = rustix::time::Timespec::try_from(delay).ok();
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(
            stop.fd(),
            rustix::event::PollFlags::IN,
        )];
        // An interrupted or failed poll shortens the wait; the flag below is what decides.
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        !stop.is_stopped()
    }
}

/// The count and state read beside `state_file`, if they are of `state`, the state the
/// follower read before. The state may have moved on since (a `prepared` cancelled back to
/// `normal`): that later count is not this state's, and pairing the two would key the
/// readiness mark and the records with another state's count. None then, as without a counter.
fn snapshot_of(state: State, state_file: &Path) -> Option<Snapshot> {
    Snapshot::read_beside(state_file)
        .ok()
        .filter(|snapshot| snapshot.state == state)
}

/// Whether a state found at start leaves work for the agents: saving in `prepared`,
/// restoring and finishing in `updated`.
fn asks_for_action(state: State) -> bool {
    matches!(state, State::Prepared | State::Updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_of_a_later_state_is_not_taken_for_the_state_read() {
        let dir = tempfile::TempDir::new().unwrap();
        let state_file = dir.path().join("state");
        // The follower read `prepared`; before the agent reads the count, a cancel made the
        // state `normal`, the fourth change.
        std::fs::write(&state_file, "normal\n").unwrap();
        std::fs::write(dir.path().join("transitions"), "4\n").unwrap();
        assert_eq!(snapshot_of(State::Prepared, &state_file), None);
        assert_eq!(
            snapshot_of(State::Normal, &state_file),
            Some(Snapshot {
                transitions: 4,
                state: State::Normal,
            })
        );
    }
}
