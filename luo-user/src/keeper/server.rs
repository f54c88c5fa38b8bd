//! The agent's side of the keeper socket: accepts workloads, checks who they are, and answers
//! their requests from a [`Keeper`].

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luo_state::State;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{SocketAddrUnix, SocketFlags};

use super::protocol::{Reply, Request};
use super::store::{Keeper, KeeperEvent, NotReady, Refusal};
use super::wire::{self, WireError, socket};
use crate::hooks::trust::{self, OpenError, Target};

/// How long `prepare` and `ready` wait for the prepared hooks at most: a client that asks for
/// longer gets this (its request says how long it waits, and the agent answers `timeout` at
/// the shorter of the two).
pub const READY_LIMIT: Duration = Duration::from_secs(600);

/// Reads the kernel's state and transition count, when they can be read.
pub type Current = dyn Fn() -> Option<(State, Option<u64>)> + Send + Sync;

/// Hears what the keeper does.
pub type Report = dyn Fn(KeeperEvent<'_>) + Send + Sync;

/// The listening socket; removed from the file system when dropped.
#[derive(Debug)]
pub struct Listener {
    socket: OwnedFd,
    path: PathBuf,
    inode: (u64, u64),
}

impl Listener {
    /// Listens at `path`, creating its directory (mode 0755) if missing.
    ///
    /// The directory, and every one above it, must be owned by root or the agent's user and
    /// writable by its owner alone, as the hooks' (see [`crate::hooks::trust`]): whoever may
    /// write it could put their own socket at `path` once the agent is gone, and be handed
    /// the workloads' files. Binding fails with `PermissionDenied` and the fix otherwise.
    ///
    /// A socket left at `path` by an agent that died is replaced; one that answers belongs
    /// to a running agent, and binding fails with `AddrInUse` and a message saying so.
    pub fn bind(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let context = |err: std::io::Error, what: &str| {
            std::io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
        };
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|err| context(err, "cannot create the directory of"))?;
        check_dir(dir)?;
        remove_stale(&path)?;
        let addr =
            SocketAddrUnix::new(path.as_path()).map_err(|e| context(e.into(), "bad path"))?;
        let socket = socket()?;
        // The mode is the first gate (the peer check below is the second): owner only.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = rustix::net::bind(&socket, &addr);
        rustix::process::umask(old);
        bound.map_err(|e| context(e.into(), "cannot listen at"))?;
        rustix::net::listen(&socket, 16).map_err(|e| context(e.into(), "cannot listen at"))?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| context(e, "cannot stat"))?;
        Ok(Listener {
            socket,
            path,
            inode: (meta.dev(), meta.ino()),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers workloads from `keeper` in threads of their own, for as long as the process
    /// lives; `current` reads the kernel's state for readiness, `report` hears each event.
    pub fn serve(
        &self,
        keeper: Arc<Keeper>,
        current: Arc<Current>,
        report: Arc<Report>,
    ) -> std::io::Result<()> {
        // The thread accepts on a copy of the socket: the listener itself stays with its owner,
        // whose drop removes the path when the agent ends.
        let socket = self.socket.try_clone()?;
        std::thread::Builder::new()
            .name("luo-keeper".into())
            .spawn(move || {
                loop {
                    let Ok(conn) = rustix::net::accept_with(&socket, SocketFlags::CLOEXEC) else {
                        // EINTR, ECONNABORTED, EMFILE: the listener stays; back off a little
                        // so that a lack of descriptors does not spin.
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let (keeper, current, report) =
                        (keeper.clone(), current.clone(), report.clone());
                    // A thread per workload: there are a few, and `prepare` blocks for the
                    // hooks' whole run.
                    let spawned = std::thread::Builder::new()
                        .name("luo-keeper-peer".into())
                        .spawn(move || Peer::new(conn).serve(&keeper, &*current, &*report));
                    if spawned.is_err() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            })
            .map(drop)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only if the path is still this socket: a newer agent may have replaced it.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.inode {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Checks that `dir`, where the socket goes, and the directories above it are trusted: owned
/// by root or the agent's user, writable by their owner alone (a sticky root directory such
/// as `/tmp` may be above).
fn check_dir(dir: &Path) -> std::io::Result<()> {
    let absolute = std::path::absolute(dir)?;
    match trust::open(&absolute, Target::Directory) {
        Ok(_) => Ok(()),
        Err(OpenError::Untrusted(untrusted)) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "will not listen in {}: {untrusted}; others could put a socket of their own \
                 in its place",
                absolute.display()
            ),
        )),
        Err(OpenError::Io { path, source }) => Err(std::io::Error::new(
            source.kind(),
            format!("cannot check {}: {source}", path.display()),
        )),
    }
}

/// Removes a socket at `path` that nobody answers on; refuses to remove anything else.
fn remove_stale(path: &Path) -> std::io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; remove it or pick another --socket",
                path.display()
            ),
        ));
    }
    let addr = SocketAddrUnix::new(path)?;
    let probe = socket()?;
    match rustix::net::connect(&probe, &addr) {
        Ok(()) => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "another agent listens at {}; one agent per machine",
                path.display()
            ),
        )),
        // Nobody listens: the socket of an agent that died.
        Err(Errno::CONNREFUSED) => std::fs::remove_file(path).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("cannot remove the stale socket {}: {err}", path.display()),
            )
        }),
        // Anything else (a full backlog, EAGAIN, a denied access) does not say the agent is
        // gone: its socket stays.
        Err(errno) => Err(std::io::Error::new(
            std::io::Error::from(errno).kind(),
            format!(
                "cannot tell whether an agent listens at {}: connecting to it failed: {errno}; \
                 if no agent runs, remove it",
                path.display()
            ),
        )),
    }
}

/// One connected workload.
struct Peer {
    conn: OwnedFd,
    /// 0 when not known (a peer outside the agent's pid namespace): only for the log.
    pid: u32,
    allowed: Result<(), Refusal>,
    /// The sessions this peer handed files for that are not preserved yet.
    kept: Vec<String>,
}

impl Peer {
    fn new(conn: OwnedFd) -> Self {
        let (pid, allowed) = match wire::peer_cred(&conn) {
            Ok(cred) => {
                let me = rustix::process::geteuid().as_raw();
                let allowed = if cred.uid == 0 || cred.uid == me {
                    Ok(())
                } else {
                    Err(format!(
                        "uid {} may not use this agent: only root and the agent's own user \
                         (uid {me}) may hand over or claim files",
                        cred.uid,
                    ))
                };
                (cred.pid.unwrap_or(0), allowed)
            }
            Err(err) => (0, Err(format!("cannot read the peer's credentials: {err}"))),
        };
        Peer {
            conn,
            pid,
            allowed,
            kept: Vec::new(),
        }
    }

    fn serve(mut self, keeper: &Keeper, current: &Current, report: &Report) {
        loop {
            let (text, files) = match wire::recv(&self.conn) {
                Ok(message) => message,
                Err(WireError::Closed) => break,
                Err(err) => {
                    let reason = format!("a bad message: {err}");
                    report(KeeperEvent::Refused {
                        pid: self.pid,
                        reason: &reason,
                    });
                    let _ = wire::send(&self.conn, &Reply::Error(reason.clone()).to_string(), &[]);
                    break;
                }
            };
            let (reply, out) = match (&self.allowed, Request::parse(&text)) {
                (Err(why), _) => (Reply::Error(why.clone()), Vec::new()),
                (_, Err(err)) => (Reply::Error(err.to_string()), Vec::new()),
                (Ok(()), Ok(request)) => self.answer(request, files, keeper, current, report),
            };
            if let Reply::Error(reason) = &reply {
                report(KeeperEvent::Refused {
                    pid: self.pid,
                    reason,
                });
            }
            let borrowed: Vec<_> = out.iter().map(AsFd::as_fd).collect();
            if wire::send(&self.conn, &reply.to_string(), &borrowed).is_err() {
                break;
            }
        }
        // Files kept for a prepare that never came: the workload is gone, let them go.
        for name in &self.kept {
            match keeper.drop_kept(name) {
                Some(false) => report(KeeperEvent::Dropped { name }),
                Some(true) => report(KeeperEvent::Departed { name }),
                None => {}
            }
        }
    }

    fn answer(
        &mut self,
        request: Request,
        files: Vec<OwnedFd>,
        keeper: &Keeper,
        current: &Current,
        report: &Report,
    ) -> (Reply, Vec<OwnedFd>) {
        let start = std::time::Instant::now();
        let reply = match request {
            Request::Keep { name, tokens } => {
                let count = files.len();
                keeper.keep(&name, &tokens, files).map(|()| {
                    report(KeeperEvent::Kept {
                        name: &name,
                        count,
                        pid: self.pid,
                    });
                    self.kept.push(name.clone());
                    Reply::Kept { name, count }
                })
            }
            Request::Claim { name, tokens } => match keeper.claim(&name, &tokens) {
                Ok(files) => {
                    let count = files.len();
                    report(KeeperEvent::Claimed {
                        name: &name,
                        count,
                        pid: self.pid,
                        took: start.elapsed(),
                    });
                    return (Reply::Claimed { name, count }, files);
                }
                Err(refusal) => Err(refusal),
            },
            Request::Restored { name } => keeper.restored(&name).map(|finished| {
                report_finished(&finished, report);
                Reply::Restored { name }
            }),
            Request::Prepare { timeout } => {
                return (self.prepare(timeout, keeper, current, report), Vec::new());
            }
            Request::Ready { timeout } => {
                return (self.wait_ready(timeout, keeper, current), Vec::new());
            }
            // The count now, so the cancel answers waiters of this `prepared` and not those of
            // the next one.
            Request::Cancel => {
                keeper
                    .cancel(current().and_then(|(_, count)| count))
                    .map(|sessions| {
                        report(KeeperEvent::Unpreserved { sessions });
                        Reply::Cancelled { sessions }
                    })
            }
            Request::Finish => finish(keeper, current, report),
        };
        (reply.unwrap_or_else(Reply::Error), Vec::new())
    }

    /// Preserves the kept files, then waits for the prepared hooks; refused outside `normal`
    /// and `prepared`, before anything is preserved.
    fn prepare(
        &self,
        timeout: Option<Duration>,
        keeper: &Keeper,
        current: &Current,
        report: &Report,
    ) -> Reply {
        match current() {
            Some((State::Normal, _)) => keeper.forget_uncounted(),
            Some((State::Prepared, _)) => {}
            // Mainline would take the files while `updated`, but the state shows `prepared`
            // only once every incoming session is finished: the hooks would not run, and the
            // files would stay preserved with nobody waiting for them.
            Some((State::Updated, _)) => {
                return Reply::Error(
                    "cannot prepare a live update while the state is updated: the sessions the \
                     previous kernel handed over must be finished first (each workload claims \
                     and restores its own, then the agent finishes it after the updated hooks; \
                     'luoctl finish' finishes the restored ones by hand)"
                        .to_owned(),
                );
            }
            Some((state, _)) => {
                return Reply::Error(format!(
                    "cannot prepare a live update while the state is {state}; wait until it is \
                     normal"
                ));
            }
            None => {
                return Reply::Error(
                    "cannot prepare a live update: the agent cannot read the state; check \
                     that the module is loaded and the agent's --state-file"
                        .to_owned(),
                );
            }
        }
        // The client waits its timeout from the request on: the preservation (a large memfd's
        // pages are pinned one by one) counts against it, so the agent's `timeout` answer
        // still comes before the client gives up.
        let start = Instant::now();
        match keeper.preserve_kept() {
            Ok(preserved) => {
                for (name, count, took) in &preserved {
                    report(KeeperEvent::Preserved {
                        name,
                        count: *count,
                        took: *took,
                    });
                }
                let left = timeout.map(|timeout| timeout.saturating_sub(start.elapsed()));
                self.wait_ready(left, keeper, current)
            }
            Err(refusal) => Reply::Error(refusal),
        }
    }

    /// Waits for the prepared hooks as long as the client does, at most [`READY_LIMIT`].
    fn wait_ready(&self, timeout: Option<Duration>, keeper: &Keeper, current: &Current) -> Reply {
        let limit = timeout.map_or(READY_LIMIT, |timeout| timeout.min(READY_LIMIT));
        match keeper.wait_ready(limit, current, || hung_up(&self.conn)) {
            Ok(mark) => Reply::Ready {
                transitions: mark.transitions,
            },
            Err(NotReady::TimedOut(after)) => Reply::TimedOut { after },
            Err(NotReady::Refused(why)) => Reply::Error(why),
        }
    }
}

/// A person's finish (observer flavour): finishes the restored incoming sessions now, and
/// lets the ones restored later be finished at once; refused outside `updated`. A failed
/// finish is logged and refuses the request, naming the session.
fn finish(keeper: &Keeper, current: &Current, report: &Report) -> Result<Reply, Refusal> {
    if !keeper.has_sessions() {
        return Err(
            "there is no session to finish: luo runs in the standalone flavour, where \
                    'luoctl finish' sends the finish event itself"
                .to_owned(),
        );
    }
    match current() {
        Some((State::Updated, _)) => {}
        Some((state, _)) => {
            return Err(format!(
                "the state is {state}, not updated: no session the previous kernel handed over \
                 waits to be finished"
            ));
        }
        None => {
            return Err(
                "the agent cannot read the state; check that the module is loaded and \
                        the agent's --state-file"
                    .to_owned(),
            );
        }
    }
    let (finished, waiting) = keeper.allow_finish();
    report_finished(&finished, report);
    let failed: Vec<String> = finished
        .iter()
        .filter_map(|(name, result)| {
            result
                .as_ref()
                .err()
                .map(|error| format!("session '{name}': {error}"))
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "finishing failed, and those sessions stay open: {}; 'luoctl finish' tries again",
            failed.join("; ")
        ));
    }
    Ok(Reply::Finished {
        sessions: finished.len(),
        waiting,
    })
}

/// Reports the finish of each session in `finished`.
pub(crate) fn report_finished(
    finished: &[(String, Result<(), crate::session::SessionError>)],
    report: &Report,
) {
    for (name, result) in finished {
        match result {
            Ok(()) => report(KeeperEvent::Finished { name }),
            Err(error) => report(KeeperEvent::FinishFailed { name, error }),
        }
    }
}

/// Whether the peer closed its end (it gave up waiting).
fn hung_up(conn: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(conn, PollFlags::RDHUP)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR)
}
