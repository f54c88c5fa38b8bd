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
    /// One failed, or the state left `prepared` before they were done: at that transition
    /// count (`None`: whatever the count).
    Failed(Option<u64>, String),
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
    /// Whether the agent runs a hook now (of any state), and since when it does not: a
    /// `prepared` it has not acted on yet may just wait behind the hooks of the state before.
    hook_running: bool,
    idle_since: Instant,
}

/// The files and sessions `luoctl agent` keeps for the workloads (see [`super`]).
#[derive(Debug)]
pub struct Keeper {
    inner: Mutex<Inner>,
    changed: Condvar,
    device: PathBuf,
    sessions: bool,
    stale_limit: Duration,
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
                hook_running: false,
                idle_since: Instant::now(),
            }),
            changed: Condvar::new(),
            device: device.into(),
            sessions,
            stale_limit: STALE_LIMIT,
        }
    }

    /// Gives the agent `limit` instead of [`STALE_LIMIT`] to act on a `prepared` newer than
    /// its last mark before a waiter is told it missed it.
    pub fn with_stale_limit(mut self, limit: Duration) -> Self {
        self.stale_limit = limit;
        self
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
    ///
    /// Refuses a file mainline cannot preserve (anything but an unlinked memfd that is not
    /// hugetlb), since it would fail every later prepare, and a name whose session is
    /// preserved already (see below).
    pub fn keep(&self, name: &str, tokens: &[u64], files: Vec<OwnedFd>) -> Result<(), Refusal> {
        self.need_sessions()?;
        if tokens.len() != files.len() {
            return Err(format!(
                "{} tokens came with {} files; send one file per token",
                tokens.len(),
                files.len()
            ));
        }
        for (token, file) in tokens.iter().zip(&files) {
            preservable(file).map_err(|why| format!("the file of token {token} {why}"))?;
        }
        let mut inner = self.lock();
        if inner.kept.contains_key(name) {
            return Err(format!(
                "session '{name}' is already kept; one workload per session name"
            ));
        }
        // Its workload went away after the prepare (the shutdown of `systemctl kexec` stops
        // it) and its session still preserves the files it had: those are what the next
        // kernel gets, and the prepare would skip a new set under the same name. Replacing
        // the session would throw away what was preserved; refusing loses nothing, and a
        // person who wants the new files preserved instead says so with a cancel.
        if inner.outgoing.contains_key(name) {
            return Err(format!(
                "session '{name}' is preserved already, with the files handed over before the \
                 last prepare; run 'luoctl cancel' to close it, then hand the files over again \
                 and run 'luoctl prepare'"
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
    /// readiness is told. `transitions` is the kernel's count read at the cancel (when it
    /// counts): the cancel is about the `prepared` of that count, not about the one a later
    /// prepare makes. Returns how many sessions were closed.
    pub fn cancel(&self, transitions: Option<u64>) -> Result<usize, Refusal> {
        self.need_sessions()?;
        let sessions = self.unpreserve();
        self.set(Hooks::Failed(
            transitions,
            "the live update was cancelled (luoctl cancel)".to_owned(),
        ));
        Ok(sessions)
    }

    /// A new prepare starts from `normal`: what the agent recorded without a transition count
    /// (a module older than the counter, or a cancel whose count could not be read) is about
    /// an earlier `prepared`, and would otherwise answer the waiter of this one at once.
    pub(super) fn forget_uncounted(&self) {
        let mut inner = self.lock();
        if matches!(
            inner.hooks,
            Hooks::Failed(None, _)
                | Hooks::Ready(Mark {
                    transitions: None,
                    ..
                })
        ) {
            inner.hooks = Hooks::Idle;
        }
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

    /// The updated hooks all succeeded (or a person said to finish): finishes every restored
    /// session now, and each one restored from now on. Returns the sessions finished (each
    /// with how its finish went: a failed one stays open), and how many claimed ones wait for
    /// their workload's restore.
    pub fn allow_finish(&self) -> (Finished, usize) {
        let mut inner = self.lock();
        inner.finish_allowed = true;
        let finished = finish_restored(&mut inner);
        // Those whose finish failed are still there, restored: they do not wait for a restore.
        let waiting = inner
            .incoming
            .keys()
            .filter(|name| !inner.restored.contains(*name))
            .count();
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

    /// A prepared hook of `mark` failed (`None`: whatever the count).
    pub fn hooks_failed(&self, mark: Option<Mark>, why: String) {
        self.set(Hooks::Failed(mark.and_then(|mark| mark.transitions), why));
    }

    /// The agent acted on `state`, which is not `prepared`, at `mark`: a waiter for the hooks
    /// of the `prepared` before it is told.
    ///
    /// A failure recorded without a transition count is forgotten here: it was about the
    /// `prepared` the state just left, and kept, it would answer the waiter of every later
    /// `prepared` at once (it matches whatever the count).
    pub fn left_prepared(&self, state: State, mark: Mark) {
        let mut inner = self.lock();
        match inner.hooks {
            Hooks::Running(_) | Hooks::Ready(_) => {
                inner.hooks = Hooks::Failed(
                    mark.transitions,
                    format!("the state moved to {state} before the kexec"),
                );
                self.changed.notify_all();
            }
            Hooks::Failed(None, _) => inner.hooks = Hooks::Idle,
            Hooks::Idle | Hooks::Failed(Some(_), _) => {}
        }
    }

    /// The agent started (`true`) or ended (`false`) a hook, of any state. While one runs, a
    /// waiter does not count the time towards [`STALE_LIMIT`]: the agent runs hooks one at a
    /// time, so a `prepared` that came meanwhile is acted on once they are done.
    pub fn hook_running(&self, running: bool) {
        let mut inner = self.lock();
        inner.hook_running = running;
        if !running {
            inner.idle_since = Instant::now();
        }
        self.changed.notify_all();
    }

    fn set(&self, hooks: Hooks) {
        self.lock().hooks = hooks;
        self.changed.notify_all();
    }

    /// Waits until the prepared hooks of the `prepared` state that `current` reads succeeded,
    /// one failed, or `timeout` passed; `gone` is asked every second whether the waiter left.
    /// `current` answers `None` when it cannot tell (the state or the count could not be
    /// read): then no mark is taken for this state's.
    ///
    /// `current` reads the kernel's state and transition count: a mark with a count answers
    /// only for that count, so a `prepared` that came and went and came back between two reads
    /// is not taken for the one whose hooks ran. The agent follows the state's word, so it is
    /// not woken by such a round trip: when its last mark stays older than the count for
    /// [`STALE_LIMIT`] ([`Keeper::with_stale_limit`]) while it runs no hook
    /// ([`Keeper::hook_running`]), the wait ends saying so, instead of at the timeout.
    pub fn wait_ready(
        &self,
        timeout: Duration,
        current: impl Fn() -> Option<(State, Option<u64>)>,
        gone: impl Fn() -> bool,
    ) -> Result<Mark, NotReady> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut inner = self.lock();
        loop {
            let now = current();
            let count = now.and_then(|(_, count)| count);
            // Whether something of the agent's is about this count. Without a count now (a
            // module older than the counter) anything is; with one, only a mark of the same
            // count: a mark whose count was lost (the state moved on before it was read) is
            // about an earlier `prepared`, never this one.
            let fresh = |at: Option<u64>| count.is_none() || at == count;
            match (&inner.hooks, now) {
                // A failed hook's cancel may come before the waiter's first look: the one
                // change since the failed `prepared` is that cancel, so the failure is the
                // answer, not the state it left.
                (Hooks::Failed(Some(at), why), Some((State::Normal, Some(count))))
                    if count.checked_sub(1) == Some(*at) =>
                {
                    return Err(NotReady::Refused(why.clone()));
                }
                (_, Some((state, _))) if state != State::Prepared => {
                    return Err(NotReady::Refused(format!(
                        "the state is {state}, not prepared: nothing to kexec; run \
                         'luoctl prepare' first"
                    )));
                }
                (Hooks::Ready(mark), Some(_)) if fresh(mark.transitions) => return Ok(*mark),
                (Hooks::Failed(at, why), _) if fresh(*at) => {
                    return Err(NotReady::Refused(why.clone()));
                }
                (Hooks::Ready(Mark { transitions, .. }), _)
                | (Hooks::Failed(transitions @ Some(_), _), _)
                    if !inner.hook_running
                        && Instant::now()
                            .saturating_duration_since(start.max(inner.idle_since))
                            >= self.stale_limit =>
                {
                    return Err(NotReady::Refused(format!(
                        "the agent's last prepared hooks were for transition {}, and it has \
                         not acted on this prepared state (transition {}): a cancel and a new \
                         prepare came between two of its reads, which coalesce; run 'luoctl \
                         cancel', then 'luoctl prepare' again",
                        transitions.unwrap_or_default(),
                        count.unwrap_or_default()
                    )));
                }
                _ => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NotReady::TimedOut(timeout));
            }
            if gone() {
                return Err(NotReady::Refused("the waiter went away".to_owned()));
            }
            inner = self
                .changed
                .wait_timeout(inner, left.min(Duration::from_secs(1)))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// How long a waiter gives the agent, once it runs no hook, to act on a `prepared` state newer
/// than its last mark: the agent acts within a moment of a change it sees (seconds under TCG
/// and load), so longer means it did not see this one.
pub const STALE_LIMIT: Duration = Duration::from_secs(30);

/// Why [`Keeper::wait_ready`] ended without the hooks' success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The hooks were not done within the wait, which lasted this long.
    TimedOut(Duration),
    /// A hook failed, the state is not `prepared`, the agent missed it, or the waiter left:
    /// the text says which and what to do.
    Refused(Refusal),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut(timeout) => write!(
                f,
                "the prepared hooks did not finish within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Refused(why) => f.write_str(why),
        }
    }
}

/// Why mainline cannot preserve `file`, if it cannot: in Linux 7.3 only an unlinked memfd
/// that is not hugetlb (`mm/memfd_luo.c`). Checked at `keep`, since a file that cannot be
/// preserved fails the prepare of every workload, not only its own.
fn preservable(file: &OwnedFd) -> Result<(), String> {
    // Seals exist only on shmem and hugetlbfs files: anything else answers EINVAL.
    rustix::fs::fcntl_get_seals(file).map_err(|errno| {
        format!(
            "is not a memfd (F_GET_SEALS: {errno}); only memfds (memfd_create(2)) cross the \
             kexec"
        )
    })?;
    let fs = rustix::fs::fstatfs(file).map_err(|errno| format!("cannot be examined: {errno}"))?;
    // `f_type` is signed on some architectures; the magic is the low 32 bits.
    if fs.f_type as u32 == linux_raw_sys::general::HUGETLBFS_MAGIC {
        return Err(
            "is a hugetlb memfd, which mainline cannot preserve; use a memfd without \
                    MFD_HUGETLB"
                .to_owned(),
        );
    }
    let stat = rustix::fs::fstat(file).map_err(|errno| format!("cannot be examined: {errno}"))?;
    if stat.st_nlink != 0 {
        return Err("is a file with a name on tmpfs, not a memfd; only memfds \
                    (memfd_create(2)) cross the kexec"
            .to_owned());
    }
    Ok(())
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
    use std::path::Path;

    use linux_raw_sys::general::TMPFS_MAGIC;

    use super::*;

    fn prepared(count: u64) -> impl Fn() -> Option<(State, Option<u64>)> {
        move || Some((State::Prepared, Some(count)))
    }

    /// A memfd, the one kind of file mainline preserves.
    fn memfd() -> OwnedFd {
        rustix::fs::memfd_create("luo-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap()
    }

    fn mark(transitions: Option<u64>, seq: u64) -> Mark {
        Mark { transitions, seq }
    }

    fn refusal(err: NotReady) -> String {
        match err {
            NotReady::Refused(why) => why,
            other => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn readiness_is_for_the_count_whose_hooks_ran() {
        let keeper = Keeper::new("/nonexistent", false);
        let mark = mark(Some(3), 1);
        keeper.hooks_ready(mark);
        assert_eq!(
            keeper.wait_ready(Duration::ZERO, prepared(3), || false),
            Ok(mark)
        );
        // A later `prepared` (count 5) is not ready with the hooks of count 3.
        let err = keeper
            .wait_ready(Duration::from_millis(10), prepared(5), || false)
            .unwrap_err();
        assert_eq!(err, NotReady::TimedOut(Duration::from_millis(10)));
        assert!(
            err.to_string().contains("did not finish within 10ms"),
            "{err}"
        );
    }

    #[test]
    fn a_state_that_cannot_be_read_is_never_taken_for_the_marked_one() {
        let keeper = Keeper::new("/nonexistent", false);
        keeper.hooks_ready(mark(None, 1));
        let err = keeper
            .wait_ready(Duration::from_millis(10), || None, || false)
            .unwrap_err();
        assert_eq!(err, NotReady::TimedOut(Duration::from_millis(10)));
    }

    #[test]
    fn a_prepared_the_agent_never_saw_is_told_after_the_stale_limit() {
        let keeper = Keeper::new("/nonexistent", false).with_stale_limit(Duration::from_millis(50));
        // The hooks ran and failed for transition 1; the state came back to prepared at 3
        // without the agent seeing it: not refused for 1's failure, but as missed.
        keeper.hooks_failed(Some(mark(Some(1), 1)), "prepared.d/10-save failed".into());
        let err = refusal(
            keeper
                .wait_ready(Duration::from_secs(30), prepared(3), || false)
                .unwrap_err(),
        );
        assert!(err.contains("for transition 1"), "{err}");
        assert!(err.contains("(transition 3)"), "{err}");
        // A later `prepared` the agent does act on is waited for, and answered (the default
        // limit: the agent acts well within it).
        let keeper = std::sync::Arc::new(Keeper::new("/nonexistent", false));
        keeper.hooks_failed(Some(mark(Some(1), 1)), "prepared.d/10-save failed".into());
        let setter = {
            let keeper = keeper.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                keeper.hooks_ready(mark(Some(5), 3));
            })
        };
        let got = keeper.wait_ready(Duration::from_secs(30), prepared(5), || false);
        setter.join().unwrap();
        assert_eq!(got.map(|mark| mark.transitions), Ok(Some(5)));
    }

    #[test]
    fn the_stale_limit_does_not_run_while_the_agent_runs_a_hook() {
        let limit = Duration::from_millis(100);
        let keeper =
            std::sync::Arc::new(Keeper::new("/nonexistent", false).with_stale_limit(limit));
        keeper.hooks_failed(Some(mark(Some(1), 1)), "prepared.d/10-save failed".into());
        // The agent is busy with the hooks of the state before this `prepared`.
        keeper.hook_running(true);
        let err = keeper
            .wait_ready(Duration::from_millis(400), prepared(3), || false)
            .unwrap_err();
        assert_eq!(err, NotReady::TimedOut(Duration::from_millis(400)));
        // Once it runs none, the limit runs from then, not from the waiter's start.
        let ender = {
            let keeper = keeper.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                keeper.hook_running(false);
            })
        };
        let start = Instant::now();
        let err = refusal(
            keeper
                .wait_ready(Duration::from_secs(30), prepared(3), || false)
                .unwrap_err(),
        );
        ender.join().unwrap();
        assert!(err.contains("for transition 1"), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(300) + limit);
    }

    #[test]
    fn a_failed_hook_or_a_state_that_moved_on_is_told_to_the_waiter() {
        let keeper = Keeper::new("/nonexistent", false);
        keeper.hooks_failed(Some(mark(Some(1), 1)), "10-checkpoint failed".into());
        let err = keeper
            .wait_ready(Duration::ZERO, prepared(1), || false)
            .unwrap_err();
        assert_eq!(err, NotReady::Refused("10-checkpoint failed".into()));

        // Without a counter, the waiter cannot see that the state moved on; the agent tells.
        let uncounted = || Some((State::Prepared, None));
        let keeper = Keeper::new("/nonexistent", false);
        keeper.hooks_started(mark(None, 1));
        keeper.left_prepared(State::Normal, mark(None, 2));
        let err = refusal(
            keeper
                .wait_ready(Duration::ZERO, uncounted, || false)
                .unwrap_err(),
        );
        assert!(err.contains("moved to normal"), "{err}");
    }

    #[test]
    fn a_cancel_answers_the_waiters_of_its_own_prepared_only() {
        let keeper = Keeper::new("/nonexistent", true);
        keeper.hooks_ready(mark(Some(2), 1));
        assert_eq!(keeper.cancel(Some(2)), Ok(0));
        let err = refusal(
            keeper
                .wait_ready(Duration::ZERO, prepared(2), || false)
                .unwrap_err(),
        );
        assert!(err.contains("cancelled"), "{err}");
        // The next prepare's `prepared` (count 4) is the hooks' to answer, not the cancel's.
        keeper.hooks_ready(mark(Some(4), 3));
        assert_eq!(
            keeper
                .wait_ready(Duration::ZERO, prepared(4), || false)
                .map(|mark| mark.transitions),
            Ok(Some(4))
        );
    }

    #[test]
    fn a_mark_without_a_count_does_not_answer_a_counted_prepared() {
        let keeper = Keeper::new("/nonexistent", true);
        keeper.hooks_ready(mark(None, 1));
        assert_eq!(
            keeper.wait_ready(Duration::ZERO, prepared(4), || false),
            Err(NotReady::TimedOut(Duration::ZERO))
        );
    }

    #[test]
    fn a_failure_whose_cancel_came_first_is_still_the_answer() {
        let keeper = Keeper::new("/nonexistent", true);
        keeper.hooks_failed(
            Some(mark(Some(2), 1)),
            "prepared.d/10-fail failed".to_owned(),
        );
        // The agent's cancel (count 3) came before the waiter's first read.
        let normal = |count| move || Some((State::Normal, Some(count)));
        let err = refusal(
            keeper
                .wait_ready(Duration::ZERO, normal(3), || false)
                .unwrap_err(),
        );
        assert_eq!(err, "prepared.d/10-fail failed");
        // A later `normal` is no longer that cancel's: the state is the answer.
        let err = refusal(
            keeper
                .wait_ready(Duration::ZERO, normal(5), || false)
                .unwrap_err(),
        );
        assert!(err.contains("the state is normal"), "{err}");
    }

    #[test]
    fn without_a_counter_an_old_failure_is_forgotten_once_the_state_moves_on() {
        let uncounted = || Some((State::Prepared, None));
        // A cancel: the agent then acts on `normal`.
        let keeper = Keeper::new("/nonexistent", true);
        keeper.cancel(None).unwrap();
        keeper.left_prepared(State::Normal, mark(None, 2));
        keeper.hooks_started(mark(None, 3));
        keeper.hooks_ready(mark(None, 3));
        assert!(
            keeper
                .wait_ready(Duration::ZERO, uncounted, || false)
                .is_ok()
        );
        // A state that moved on: forgotten when a prepare starts from `normal`, before the
        // agent acts on the new `prepared`.
        keeper.left_prepared(State::Normal, mark(None, 4));
        keeper.forget_uncounted();
        let err = keeper
            .wait_ready(Duration::from_millis(10), uncounted, || false)
            .unwrap_err();
        assert_eq!(err, NotReady::TimedOut(Duration::from_millis(10)));
    }

    #[test]
    fn a_waiter_in_a_state_other_than_prepared_is_refused_at_once() {
        let keeper = Keeper::new("/nonexistent", false);
        let err = refusal(
            keeper
                .wait_ready(
                    Duration::from_secs(60),
                    || Some((State::Normal, None)),
                    || false,
                )
                .unwrap_err(),
        );
        assert!(err.contains("run 'luoctl prepare' first"), "{err}");
    }

    #[test]
    fn a_waiter_is_woken_when_the_hooks_succeed() {
        let keeper = std::sync::Arc::new(Keeper::new("/nonexistent", false));
        let mark = mark(Some(1), 1);
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
        let err = keeper.keep("vm", &[1, 2], vec![memfd()]).unwrap_err();
        assert!(err.contains("2 tokens came with 1 files"), "{err}");
        keeper.keep("vm", &[1], vec![memfd()]).unwrap();
        let err = keeper.keep("vm", &[1], vec![memfd()]).unwrap_err();
        assert!(err.contains("already kept"), "{err}");
        assert_eq!(keeper.drop_kept("vm"), Some(false));
        keeper.keep("vm", &[1], vec![memfd()]).unwrap();
    }

    #[test]
    fn only_an_unlinked_memfd_is_kept() {
        let keeper = Keeper::new("/nonexistent", true);
        // A file of a disk file system has no seals.
        let plain = OwnedFd::from(tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap());
        let err = keeper
            .keep("vm", &[1, 2], vec![memfd(), plain])
            .unwrap_err();
        assert!(
            err.starts_with("the file of token 2 is not a memfd"),
            "{err}"
        );
        // A tmpfs file with a name has seals, but mainline takes only unlinked ones.
        let shm = Path::new("/dev/shm");
        if rustix::fs::statfs(shm).is_ok_and(|fs| fs.f_type as u32 == TMPFS_MAGIC) {
            let named = tempfile::NamedTempFile::new_in(shm).unwrap();
            let fd = OwnedFd::from(named.reopen().unwrap());
            let err = keeper.keep("vm", &[1], vec![fd]).unwrap_err();
            assert!(err.contains("a file with a name on tmpfs"), "{err}");
        }
        // Nothing of a refused request is kept.
        assert_eq!(keeper.drop_kept("vm"), None);
    }

    #[test]
    fn a_failed_preserve_keeps_the_files_for_the_next_prepare() {
        let keeper = Keeper::new("/nonexistent/liveupdate", true);
        let err = keeper.preserve_kept().unwrap_err();
        assert!(err.contains("no workload"), "{err}");
        keeper.keep("vm", &[1], vec![memfd()]).unwrap();
        let err = keeper.preserve_kept().unwrap_err();
        assert!(err.starts_with("session 'vm': "), "{err}");
        assert!(!keeper.lock().kept.is_empty());
    }
}
