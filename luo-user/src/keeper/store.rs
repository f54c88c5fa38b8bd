//! What the agent keeps: the workloads' files before the prepare, the outgoing sessions that
//! preserve them until the kexec, the incoming sessions claimed after it, and the mark that
//! says the prepared hooks of this `prepared` state all succeeded.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use luo_state::State;

use crate::session::{Session, SessionError, Sessions};

/// Which `prepared` state the agent acted on: the kernel's transition count when it counts,
/// and the agent's own change number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The kernel's transition count at that state, when the kernel counts.
    pub transitions: Option<u64>,
    /// The agent's change number of that state.
    pub seq: u64,
}

/// What the keeper did, for the agent's log.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeeperEvent<'a> {
    /// A workload handed over files for a session.
    Kept {
        /// The session.
        name: &'a str,
        /// How many files.
        count: usize,
        /// The workload's pid.
        pid: u32,
    },
    /// A workload went away before the prepare; its files are let go.
    Dropped {
        /// The session.
        name: &'a str,
    },
    /// A workload went away after the prepare (the shutdown of `systemctl kexec` stops it):
    /// its session stays, and preserves its files for the kexec.
    Departed {
        /// The session.
        name: &'a str,
    },
    /// A session was created and its files preserved.
    Preserved {
        /// The session.
        name: &'a str,
        /// How many files.
        count: usize,
        /// How long creating the session and preserving its files took.
        took: Duration,
    },
    /// The outgoing sessions were closed: their files are no longer preserved.
    Unpreserved {
        /// How many sessions.
        sessions: usize,
    },
    /// A workload took back the files of an incoming session.
    Claimed {
        /// The session.
        name: &'a str,
        /// How many files.
        count: usize,
        /// The workload's pid.
        pid: u32,
        /// How long retrieving the session and its files took.
        took: Duration,
    },
    /// An incoming session was finished: its files are this kernel's now.
    Finished {
        /// The session.
        name: &'a str,
    },
    /// Finishing a session failed; it stays open.
    FinishFailed {
        /// The session.
        name: &'a str,
        /// Why.
        error: &'a SessionError,
    },
    /// A request was refused.
    Refused {
        /// The peer's pid.
        pid: u32,
        /// Why.
        reason: &'a str,
    },
}

/// Where the prepared hooks of the current `prepared` state stand.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hooks {
    /// No `prepared` state acted on since the last state the agent left.
    Idle,
    /// The hooks of this `prepared` state run.
    Running(Mark),
    /// They all succeeded.
    Ready(Mark),
    /// One failed, or the state left `prepared` before they were done.
    Failed(String),
}

#[derive(Debug)]
struct Inner {
    /// Files handed over before the prepare, by session: (token, file) in order.
    kept: BTreeMap<String, Vec<(u64, OwnedFd)>>,
    /// Sessions this kernel hands over; dropping one unpreserves its files.
    outgoing: BTreeMap<String, Session>,
    /// Sessions the previous kernel handed over, claimed and not yet finished.
    incoming: BTreeMap<String, Session>,
    /// Claimed sessions whose workload said it restored them.
    restored: BTreeSet<String>,
    /// The updated hooks all succeeded: a restored session may be finished.
    finish_allowed: bool,
    hooks: Hooks,
}

/// The files and sessions `luoctl agent` keeps for the workloads (see [`super`]).
#[derive(Debug)]
pub struct Keeper {
    inner: Mutex<Inner>,
    changed: Condvar,
    device: PathBuf,
    sessions: bool,
}

/// A request the keeper refused: the text says why and what to do.
pub type Refusal = String;

/// The sessions a call finished, each with how its finish went.
pub type Finished = Vec<(String, Result<(), SessionError>)>;

impl Keeper {
    /// A keeper that opens mainline's orchestrator at `device` for each operation;
    /// `sessions` says whether it is there (the observer flavour): without it only the
    /// readiness mark works, and the file requests are refused with the reason.
    pub fn new(device: impl Into<PathBuf>, sessions: bool) -> Self {
        Keeper {
            inner: Mutex::new(Inner {
                kept: BTreeMap::new(),
                outgoing: BTreeMap::new(),
                incoming: BTreeMap::new(),
                restored: BTreeSet::new(),
                finish_allowed: false,
                hooks: Hooks::Idle,
            }),
            changed: Condvar::new(),
            device: device.into(),
            sessions,
        }
    }

    /// Whether mainline's sessions are there (the observer flavour).
    pub fn has_sessions(&self) -> bool {
        self.sessions
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps whole (each update is one insert or
        // remove): go on with them.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn need_sessions(&self) -> Result<(), Refusal> {
        if self.sessions {
            Ok(())
        } else {
            Err(
                "files cannot be kept: luo runs in the standalone flavour, where memory does \
                 not cross the kexec; boot the kernel with liveupdate=on (mainline's \
                 orchestrator) for sessions"
                    .to_owned(),
            )
        }
    }

    /// Keeps `files` for session `name` under `tokens` until the prepare preserves them.
    pub fn keep(&self, name: &str, tokens: &[u64], files: Vec<OwnedFd>) -> Result<(), Refusal> {
        self.need_sessions()?;
        if tokens.len() != files.len() {
            return Err(format!(
                "{} tokens came with {} files; send one file per token",
                tokens.len(),
                files.len()
            ));
        }
        let mut inner = self.lock();
        if inner.kept.contains_key(name) {
            return Err(format!(
                "session '{name}' is already kept; one workload per session name"
            ));
        }
        inner
            .kept
            .insert(name.to_owned(), tokens.iter().copied().zip(files).collect());
        Ok(())
    }

    /// Lets go of the files kept for session `name`: their workload went away. A session that
    /// preserves them already stays (a restarted workload may claim it after the kexec).
    /// Returns `None` when nothing was kept, else whether a session preserves the files.
    pub fn drop_kept(&self, name: &str) -> Option<bool> {
        let mut inner = self.lock();
        inner.kept.remove(name)?;
        Some(inner.outgoing.contains_key(name))
    }

    /// Creates a session for each kept set of files not preserved yet and preserves them; on
    /// the first failure unpreserves what this call preserved and says which session failed.
    ///
    /// The files stay kept: after a cancel, the next prepare preserves them again.
    /// Returns the sessions preserved, with their file counts and how long each took.
    pub fn preserve_kept(&self) -> Result<Vec<(String, usize, Duration)>, Refusal> {
        self.need_sessions()?;
        let mut inner = self.lock();
        if inner.kept.is_empty() {
            return Err(
                "no workload handed the agent a file to preserve; a live update with \
                        nothing preserved is a plain kexec"
                    .to_owned(),
            );
        }
        let mut made = Vec::new();
        // One open of the device per session: the device admits one opener, and a person's
        // command or the selftests may want it between two sessions.
        for (name, files) in &inner.kept {
            if inner.outgoing.contains_key(name) {
                continue;
            }
            let start = Instant::now();
            let result = Sessions::open_at(&self.device).and_then(|sessions| {
                let session = sessions.create(name)?;
                for (token, file) in files {
                    session.preserve(file, *token)?;
                }
                Ok(session)
            });
            match result {
                Ok(session) => made.push((name.clone(), files.len(), start.elapsed(), session)),
                // Dropping the sessions made so far unpreserves their files.
                Err(error) => return Err(format!("session '{name}': {error}")),
            }
        }
        let preserved = made
            .iter()
            .map(|(name, count, took, _)| (name.clone(), *count, *took))
            .collect();
        for (name, _, _, session) in made {
            inner.outgoing.insert(name, session);
        }
        Ok(preserved)
    }

    /// Closes every outgoing session, so their files are no longer preserved (the observer
    /// flavour's cancel). Returns how many there were.
    pub fn unpreserve(&self) -> usize {
        let outgoing = std::mem::take(&mut self.lock().outgoing);
        outgoing.len()
    }

    /// A person's cancel (observer flavour): closes the outgoing sessions, and a waiter for
    /// readiness is told. Returns how many sessions were closed.
    pub fn cancel(&self) -> Result<usize, Refusal> {
        self.need_sessions()?;
        let sessions = self.unpreserve();
        self.hooks_failed("the live update was cancelled (luoctl cancel)".to_owned());
        Ok(sessions)
    }

    /// Retrieves the incoming session `name` and its files under `tokens`, in order.
    pub fn claim(&self, name: &str, tokens: &[u64]) -> Result<Vec<OwnedFd>, Refusal> {
        self.need_sessions()?;
        let mut inner = self.lock();
        if !inner.incoming.contains_key(name) {
            let session = Sessions::open_at(&self.device)
                .and_then(|sessions| sessions.retrieve(name))
                .map_err(|error| error.to_string())?;
            inner.incoming.insert(name.to_owned(), session);
        }
        let session = &inner.incoming[name];
        tokens
            .iter()
            .map(|&token| session.retrieve_fd(token).map_err(|e| e.to_string()))
            .collect()
    }

    /// Records that the workload restored session `name`; finishes it if the updated hooks
    /// already succeeded. Returns the sessions finished (name and result).
    pub fn restored(&self, name: &str) -> Result<Finished, Refusal> {
        self.need_sessions()?;
        let mut inner = self.lock();
        if !inner.incoming.contains_key(name) {
            return Err(format!(
                "session '{name}' was not claimed through this agent; claim it first"
            ));
        }
        inner.restored.insert(name.to_owned());
        Ok(finish_restored(&mut inner))
    }

    /// The updated hooks all succeeded: finishes every restored session now, and each one
    /// restored from now on. Returns the sessions finished, and how many claimed ones wait.
    pub fn allow_finish(&self) -> (Finished, usize) {
        let mut inner = self.lock();
        inner.finish_allowed = true;
        let finished = finish_restored(&mut inner);
        let waiting = inner.incoming.len();
        (finished, waiting)
    }

    /// The agent starts the prepared hooks of the `prepared` state `mark`.
    pub fn hooks_started(&self, mark: Mark) {
        self.set(Hooks::Running(mark));
    }

    /// Every prepared hook of `mark` succeeded.
    pub fn hooks_ready(&self, mark: Mark) {
        self.set(Hooks::Ready(mark));
    }

    /// A prepared hook failed, or the state moved on before they were done.
    pub fn hooks_failed(&self, why: String) {
        self.set(Hooks::Failed(why));
    }

    /// The agent acted on `state`, which is not `prepared`: a waiter for readiness is told.
    pub fn left_prepared(&self, state: State) {
        let mut inner = self.lock();
        if matches!(inner.hooks, Hooks::Running(_) | Hooks::Ready(_)) {
            inner.hooks = Hooks::Failed(format!("the state moved to {state} before the kexec"));
            self.changed.notify_all();
        } else if matches!(inner.hooks, Hooks::Failed(_)) && state == State::Normal {
            // A failure is told to the waiters of its own `prepared` only.
            inner.hooks = Hooks::Idle;
        }
    }

    fn set(&self, hooks: Hooks) {
        self.lock().hooks = hooks;
        self.changed.notify_all();
    }

    /// Waits until the prepared hooks of the `prepared` state that `current` reads succeeded,
    /// one failed, or `timeout` passed; `gone` is asked every second whether the waiter left.
    ///
    /// `current` reads the kernel's state and transition count: a mark with a count is ready
    /// only for that count, so a `prepared` that came and went and came back between two
    /// reads is not taken for the one whose hooks ran.
    pub fn wait_ready(
        &self,
        timeout: Duration,
        current: impl Fn() -> Option<(State, Option<u64>)>,
        gone: impl Fn() -> bool,
    ) -> Result<Mark, Refusal> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let now = current();
            match (&inner.hooks, now) {
                (_, Some((state, _))) if state != State::Prepared => {
                    return Err(format!(
                        "the state is {state}, not prepared: nothing to kexec; run \
                         'luoctl prepare' first"
                    ));
                }
                (Hooks::Ready(mark), Some((_, count)))
                    if mark.transitions.is_none()
                        || count.is_none()
                        || mark.transitions == count =>
                {
                    return Ok(*mark);
                }
                (Hooks::Failed(why), _) => return Err(why.clone()),
                _ => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the prepared hooks did not finish within {}",
                    humantime::format_duration(timeout)
                ));
            }
            if gone() {
                return Err("the waiter went away".to_owned());
            }
            inner = self
                .changed
                .wait_timeout(inner, left.min(Duration::from_secs(1)))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// Finishes each restored incoming session, if allowed; a session whose finish fails stays
/// open (and restored) for the next try.
fn finish_restored(inner: &mut Inner) -> Finished {
    if !inner.finish_allowed {
        return Vec::new();
    }
    let names: Vec<String> = inner.restored.iter().cloned().collect();
    let mut results = Vec::new();
    for name in names {
        let Some(session) = inner.incoming.get(&name) else {
            continue;
        };
        let result = session.finish();
        if result.is_ok() {
            inner.incoming.remove(&name);
            inner.restored.remove(&name);
        }
        results.push((name, result));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(count: u64) -> impl Fn() -> Option<(State, Option<u64>)> {
        move || Some((State::Prepared, Some(count)))
    }

    #[test]
    fn readiness_is_for_the_count_whose_hooks_ran() {
        let keeper = Keeper::new("/nonexistent", false);
        let mark = Mark {
            transitions: Some(3),
            seq: 1,
        };
        keeper.hooks_ready(mark);
        assert_eq!(
            keeper.wait_ready(Duration::ZERO, prepared(3), || false),
            Ok(mark)
        );
        // A later `prepared` (count 5) is not ready with the hooks of count 3.
        let err = keeper
            .wait_ready(Duration::from_millis(10), prepared(5), || false)
            .unwrap_err();
        assert!(err.contains("did not finish within"), "{err}");
    }

    #[test]
    fn a_failed_hook_or_a_state_that_moved_on_is_told_to_the_waiter() {
        let keeper = Keeper::new("/nonexistent", false);
        keeper.hooks_failed("10-checkpoint failed".into());
        let err = keeper
            .wait_ready(Duration::ZERO, prepared(1), || false)
            .unwrap_err();
        assert_eq!(err, "10-checkpoint failed");

        let keeper = Keeper::new("/nonexistent", false);
        keeper.hooks_started(Mark {
            transitions: None,
            seq: 1,
        });
        keeper.left_prepared(State::Normal);
        let err = keeper
            .wait_ready(Duration::ZERO, prepared(1), || false)
            .unwrap_err();
        assert!(err.contains("moved to normal"), "{err}");
    }

    #[test]
    fn a_waiter_in_a_state_other_than_prepared_is_refused_at_once() {
        let keeper = Keeper::new("/nonexistent", false);
        let err = keeper
            .wait_ready(
                Duration::from_secs(60),
                || Some((State::Normal, None)),
                || false,
            )
            .unwrap_err();
        assert!(err.contains("run 'luoctl prepare' first"), "{err}");
    }

    #[test]
    fn a_waiter_is_woken_when_the_hooks_succeed() {
        let keeper = std::sync::Arc::new(Keeper::new("/nonexistent", false));
        let mark = Mark {
            transitions: Some(1),
            seq: 1,
        };
        let setter = {
            let keeper = keeper.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                keeper.hooks_ready(mark);
            })
        };
        let got = keeper.wait_ready(Duration::from_secs(30), prepared(1), || false);
        setter.join().unwrap();
        assert_eq!(got, Ok(mark));
    }

    #[test]
    fn files_are_refused_without_sessions_with_the_fix() {
        let keeper = Keeper::new("/nonexistent", false);
        let err = keeper.keep("vm", &[1], Vec::new()).unwrap_err();
        assert!(err.contains("liveupdate=on"), "{err}");
    }

    #[test]
    fn one_file_per_token_and_one_workload_per_name() {
        let keeper = Keeper::new("/nonexistent", true);
        let file = || OwnedFd::from(tempfile::tempfile().unwrap());
        let err = keeper.keep("vm", &[1, 2], vec![file()]).unwrap_err();
        assert!(err.contains("2 tokens came with 1 files"), "{err}");
        keeper.keep("vm", &[1], vec![file()]).unwrap();
        let err = keeper.keep("vm", &[1], vec![file()]).unwrap_err();
        assert!(err.contains("already kept"), "{err}");
        assert_eq!(keeper.drop_kept("vm"), Some(false));
        keeper.keep("vm", &[1], vec![file()]).unwrap();
    }

    #[test]
    fn a_failed_preserve_keeps_the_files_for_the_next_prepare() {
        let keeper = Keeper::new("/nonexistent/liveupdate", true);
        let err = keeper.preserve_kept().unwrap_err();
        assert!(err.contains("no workload"), "{err}");
        keeper
            .keep(
                "vm",
                &[1],
                vec![OwnedFd::from(tempfile::tempfile().unwrap())],
            )
            .unwrap();
        let err = keeper.preserve_kept().unwrap_err();
        assert!(err.starts_with("session 'vm': "), "{err}");
        assert!(!keeper.lock().kept.is_empty());
    }
}
