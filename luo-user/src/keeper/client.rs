//! The workload's and `luoctl`'s side of the keeper socket.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::net::SocketAddrUnix;

use super::protocol::{Reply, Request};
use super::store::Mark;
use super::wire::{self, WireError};

/// How long a request other than `prepare` and `ready` may take by default
/// ([`Client::with_timeout`]): they are quick, but wait for the agent's lock, which a prepare
/// holds while it preserves files (the pages of a large memfd are pinned one by one).
pub const CALL_LIMIT: Duration = Duration::from_secs(60);

/// How much longer than the agent's own wait a client waits for `prepare` and `ready`: the
/// agent answers `timeout` at the end of its wait, and that answer must arrive first.
const REPLY_GRACE: Duration = Duration::from_secs(5);

/// What can go wrong talking to the agent; each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nobody listens at the path.
    #[error(
        "no agent listens at {path}: start 'luoctl agent' (or its systemd unit, \
         luo-agent.service) first"
    )]
    NoAgent {
        /// The socket's path.
        path: PathBuf,
    },
    /// Connecting failed for another reason.
    #[error("cannot connect to the agent at {path}: {error}")]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// What listens at the path runs as a user other than root and this process's own: it
    /// is not the agent, or not one to trust with files or with the word that the hooks ran.
    #[error(
        "{path} belongs to a process of uid {uid}, neither root nor this user (uid {me}); \
         it is not an agent to trust: stop it, remove the socket, and start 'luoctl agent'"
    )]
    Untrusted {
        /// The socket's path.
        path: PathBuf,
        /// The listener's uid.
        uid: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// The agent refused the request.
    #[error("the agent refused '{request}': {reason}")]
    Refused {
        /// The request, as sent.
        request: String,
        /// The agent's reason.
        reason: String,
    },
    /// The agent did not answer in time, or answered that the prepared hooks were not done
    /// within the wait.
    #[error("{what} within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// The request, as sent.
        request: String,
        /// How long the wait lasted.
        timeout: Duration,
        /// What did not happen, as the start of a sentence.
        what: String,
    },
    /// The connection failed, or the agent answered something else than the protocol says.
    #[error("talking to the agent about '{request}': {error}")]
    Protocol {
        /// The request, as sent.
        request: String,
        /// What went wrong.
        error: String,
    },
}

/// A connection to `luoctl agent`'s keeper socket.
///
/// A workload keeps its connection open for as long as it wants the agent to keep its files:
/// when it closes, files not preserved yet are let go.
#[derive(Debug)]
pub struct Client {
    socket: OwnedFd,
    limit: Duration,
}

impl Client {
    /// Connects to the agent at `path` (usually [`super::DEFAULT_SOCKET`]).
    ///
    /// Only an agent running as root or as this process's user is taken (`SO_PEERCRED`):
    /// anyone else listening at the path would be handed the files, or could say that the
    /// hooks succeeded when they did not.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let connect_error = |error: std::io::Error| {
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) {
                ClientError::NoAgent {
                    path: path.to_owned(),
                }
            } else {
                ClientError::Connect {
                    path: path.to_owned(),
                    error,
                }
            }
        };
        let addr = SocketAddrUnix::new(path).map_err(|e| connect_error(e.into()))?;
        let socket = wire::socket().map_err(connect_error)?;
        rustix::net::connect(&socket, &addr).map_err(|e| connect_error(e.into()))?;
        // The credentials of the process that listens, taken when it called listen(2).
        let cred = wire::peer_cred(&socket).map_err(connect_error)?;
        let me = rustix::process::geteuid().as_raw();
        if cred.uid != 0 && cred.uid != me {
            return Err(ClientError::Untrusted {
                path: path.to_owned(),
                uid: cred.uid,
                me,
            });
        }
        // A send to an agent that stopped reading must not block for ever either.
        rustix::net::sockopt::set_socket_timeout(
            &socket,
            rustix::net::sockopt::Timeout::Send,
            Some(CALL_LIMIT),
        )
        .map_err(|e| connect_error(e.into()))?;
        Ok(Client {
            socket,
            limit: CALL_LIMIT,
        })
    }

    /// Waits at most `limit` for the answer to each request but `prepare` and `ready` (which
    /// take their own), instead of [`CALL_LIMIT`]; a request that takes longer ends with
    /// [`ClientError::Timeout`]. A zero `limit` means no limit.
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.limit = limit;
        // A limit too long for the kernel's timeval leaves sends unbounded, as good as asked.
        let _ = rustix::net::sockopt::set_socket_timeout(
            &self.socket,
            rustix::net::sockopt::Timeout::Send,
            Some(limit).filter(|limit| !limit.is_zero()),
        );
        self
    }

    /// Hands `files` to the agent for session `name`, each with its token; the agent preserves
    /// them at the next prepare.
    pub fn keep(&self, name: &str, files: &[(u64, BorrowedFd<'_>)]) -> Result<(), ClientError> {
        let request = Request::Keep {
            name: name.to_owned(),
            tokens: files.iter().map(|(token, _)| *token).collect(),
        };
        let fds: Vec<_> = files.iter().map(|(_, fd)| *fd).collect();
        match self.call(&request, &fds, self.limit)? {
            (Reply::Kept { .. }, _) => Ok(()),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Takes back the files the previous kernel preserved in session `name`, in the order of
    /// `tokens`.
    pub fn claim(&self, name: &str, tokens: &[u64]) -> Result<Vec<OwnedFd>, ClientError> {
        let request = Request::Claim {
            name: name.to_owned(),
            tokens: tokens.to_vec(),
        };
        match self.call(&request, &[], self.limit)? {
            (Reply::Claimed { count, .. }, files)
                if count == files.len() && count == tokens.len() =>
            {
                Ok(files)
            }
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Tells the agent that session `name` is restored: it finishes the session once the
    /// updated hooks succeeded.
    pub fn restored(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::Restored {
            name: name.to_owned(),
        };
        match self.call(&request, &[], self.limit)? {
            (Reply::Restored { .. }, _) => Ok(()),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Observer flavour: asks the agent to preserve every kept file and run the prepared
    /// hooks; returns once they all succeeded, or with why not. The agent waits for the hooks
    /// at most `timeout`, and at most [`READY_LIMIT`](super::READY_LIMIT).
    pub fn prepare(&self, timeout: Duration) -> Result<Mark, ClientError> {
        self.ready_call(
            &Request::Prepare {
                timeout: Some(timeout),
            },
            timeout,
        )
    }

    /// Observer flavour: asks the agent to close the outgoing sessions (mainline's cancel);
    /// returns how many it closed.
    pub fn cancel(&self) -> Result<usize, ClientError> {
        let request = Request::Cancel;
        match self.call(&request, &[], self.limit)? {
            (Reply::Cancelled { sessions }, _) => Ok(sessions),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Observer flavour: a person's finish: asks the agent to finish every session its
    /// workload restored, now, even though an updated hook failed. Returns how many it
    /// finished, and how many claimed sessions still wait for their workload's restore.
    pub fn finish(&self) -> Result<(usize, usize), ClientError> {
        let request = Request::Finish;
        match self.call(&request, &[], self.limit)? {
            (Reply::Finished { sessions, waiting }, _) => Ok((sessions, waiting)),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Waits until the prepared hooks of the current `prepared` state all succeeded; the
    /// agent waits at most `timeout`, and at most [`READY_LIMIT`](super::READY_LIMIT).
    pub fn wait_ready(&self, timeout: Duration) -> Result<Mark, ClientError> {
        self.ready_call(
            &Request::Ready {
                timeout: Some(timeout),
            },
            timeout,
        )
    }

    fn ready_call(&self, request: &Request, timeout: Duration) -> Result<Mark, ClientError> {
        // The agent ends its own wait and says so (`timeout`); the grace is for its answer.
        match self.call(request, &[], timeout.saturating_add(REPLY_GRACE))? {
            (Reply::Ready { transitions }, _) => Ok(Mark {
                transitions,
                seq: 0,
            }),
            (Reply::TimedOut { after }, _) => Err(ClientError::Timeout {
                request: request.to_string(),
                timeout: after,
                what: "the prepared hooks did not finish".to_owned(),
            }),
            (other, _) => Err(unexpected(request, &other)),
        }
    }

    fn call(
        &self,
        request: &Request,
        files: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(Reply, Vec<OwnedFd>), ClientError> {
        let text = request.to_string();
        let protocol = |error: String| ClientError::Protocol {
            request: text.clone(),
            error,
        };
        let timed_out = |text: String| ClientError::Timeout {
            what: format!("the agent did not answer '{text}'"),
            request: text,
            timeout,
        };
        match wire::send(&self.socket, &text, files) {
            Ok(()) => {}
            Err(WireError::TimedOut) => return Err(timed_out(text)),
            Err(err) => return Err(protocol(err.to_string())),
        }
        // A zero limit, or a deadline past the clock's end, is no deadline: the wait is then
        // unbounded, as a zero send timeout is (see `with_timeout`).
        let deadline = Some(timeout)
            .filter(|timeout| !timeout.is_zero())
            .and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &self.socket,
                rustix::event::PollFlags::IN,
            )];
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let limit = left.and_then(|left| rustix::time::Timespec::try_from(left).ok());
            match rustix::event::poll(&mut fds, limit.as_ref()) {
                Ok(0) => return Err(timed_out(text)),
                Ok(_) => break,
                // A signal (a terminal resized, a stopped and continued job): wait on.
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(protocol(errno.to_string())),
            }
        }
        let (reply, files) = wire::recv(&self.socket).map_err(|e| match e {
            WireError::Closed => protocol("the agent closed the connection (did it exit?)".into()),
            other => protocol(other.to_string()),
        })?;
        match Reply::parse(&reply).map_err(|e| protocol(e.to_string()))? {
            Reply::Error(reason) => Err(ClientError::Refused {
                request: text,
                reason,
            }),
            reply => Ok((reply, files)),
        }
    }
}

fn unexpected(request: &Request, reply: &Reply) -> ClientError {
    ClientError::Protocol {
        request: request.to_string(),
        error: format!("unexpected reply '{reply}'"),
    }
}
