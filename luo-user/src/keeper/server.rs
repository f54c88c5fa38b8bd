//! The agent's side of the keeper socket: accepts workloads, checks who they are, and answers
//! their requests from a [`Keeper`].

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use luo_state::State;
use rustix::event::{PollFd, PollFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::protocol::{Reply, Request};
use super::store::{Keeper, KeeperEvent, Refusal};
use super::wire::{self, WireError};

/// How long `prepare` and `ready` wait for the prepared hooks at most.
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
    /// A socket left at `path` by an agent that died is replaced; one that answers belongs
    /// to a running agent, and binding fails with `AddrInUse` and a message saying so.
    pub fn bind(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let context = |err: std::io::Error, what: &str| {
            std::io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|err| context(err, "cannot create the directory of"))?;
        }
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

fn socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
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
    if rustix::net::connect(&probe, &addr).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "another agent listens at {}; one agent per machine",
                path.display()
            ),
        ));
    }
    std::fs::remove_file(path)
}

/// One connected workload.
struct Peer {
    conn: OwnedFd,
    pid: u32,
    allowed: Result<(), Refusal>,
    /// The sessions this peer handed files for that are not preserved yet.
    kept: Vec<String>,
}

impl Peer {
    fn new(conn: OwnedFd) -> Self {
        let (pid, allowed) = match rustix::net::sockopt::socket_peercred(&conn) {
            Ok(cred) => {
                let me = rustix::process::geteuid();
                let allowed = if cred.uid.is_root() || cred.uid == me {
                    Ok(())
                } else {
                    Err(format!(
                        "uid {} may not use this agent: only root and the agent's own user \
                         (uid {}) may hand over or claim files",
                        cred.uid.as_raw(),
                        me.as_raw()
                    ))
                };
                (cred.pid.as_raw_nonzero().get().unsigned_abs(), allowed)
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
            Request::Prepare => keeper.preserve_kept().and_then(|preserved| {
                for (name, count, took) in &preserved {
                    report(KeeperEvent::Preserved {
                        name,
                        count: *count,
                        took: *took,
                    });
                }
                self.wait_ready(keeper, current)
            }),
            Request::Ready => self.wait_ready(keeper, current),
            Request::Cancel => keeper.cancel().map(|sessions| {
                report(KeeperEvent::Unpreserved { sessions });
                Reply::Cancelled { sessions }
            }),
        };
        (reply.unwrap_or_else(Reply::Error), Vec::new())
    }

    fn wait_ready(&self, keeper: &Keeper, current: &Current) -> Result<Reply, Refusal> {
        let mark = keeper.wait_ready(READY_LIMIT, current, || hung_up(&self.conn))?;
        Ok(Reply::Ready {
            transitions: mark.transitions,
        })
    }
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
