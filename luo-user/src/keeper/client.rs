//! The workload's and `luoctl`'s side of the keeper socket.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::protocol::{Reply, Request};
use super::store::Mark;
use super::wire::{self, WireError};

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
    /// The agent refused the request.
    #[error("the agent refused '{request}': {reason}")]
    Refused {
        /// The request, as sent.
        request: String,
        /// The agent's reason.
        reason: String,
    },
    /// The agent did not answer in time.
    #[error("the agent did not answer '{request}' within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// The request, as sent.
        request: String,
        /// How long the client waited.
        timeout: Duration,
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
}

impl Client {
    /// Connects to the agent at `path` (usually [`super::DEFAULT_SOCKET`]).
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
        let socket = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| connect_error(e.into()))?;
        rustix::net::connect(&socket, &addr).map_err(|e| connect_error(e.into()))?;
        Ok(Client { socket })
    }

    /// Hands `files` to the agent for session `name`, each with its token; the agent preserves
    /// them at the next prepare.
    pub fn keep(&self, name: &str, files: &[(u64, BorrowedFd<'_>)]) -> Result<(), ClientError> {
        let request = Request::Keep {
            name: name.to_owned(),
            tokens: files.iter().map(|(token, _)| *token).collect(),
        };
        let fds: Vec<_> = files.iter().map(|(_, fd)| *fd).collect();
        match self.call(&request, &fds, None)? {
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
        match self.call(&request, &[], None)? {
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
        match self.call(&request, &[], None)? {
            (Reply::Restored { .. }, _) => Ok(()),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Observer flavour: asks the agent to preserve every kept file and run the prepared
    /// hooks; returns once they all succeeded, or with why not.
    pub fn prepare(&self, timeout: Duration) -> Result<Mark, ClientError> {
        self.ready_call(&Request::Prepare, timeout)
    }

    /// Observer flavour: asks the agent to close the outgoing sessions (mainline's cancel);
    /// returns how many it closed.
    pub fn cancel(&self) -> Result<usize, ClientError> {
        let request = Request::Cancel;
        match self.call(&request, &[], None)? {
            (Reply::Cancelled { sessions }, _) => Ok(sessions),
            (other, _) => Err(unexpected(&request, &other)),
        }
    }

    /// Waits until the prepared hooks of the current `prepared` state all succeeded.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Mark, ClientError> {
        self.ready_call(&Request::Ready, timeout)
    }

    fn ready_call(&self, request: &Request, timeout: Duration) -> Result<Mark, ClientError> {
        match self.call(request, &[], Some(timeout))? {
            (Reply::Ready { transitions }, _) => Ok(Mark {
                transitions,
                seq: 0,
            }),
            (other, _) => Err(unexpected(request, &other)),
        }
    }

    fn call(
        &self,
        request: &Request,
        files: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<(Reply, Vec<OwnedFd>), ClientError> {
        let text = request.to_string();
        let protocol = |error: String| ClientError::Protocol {
            request: text.clone(),
            error,
        };
        wire::send(&self.socket, &text, files).map_err(|e| protocol(e.to_string()))?;
        if let Some(timeout) = timeout {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let mut fds = [rustix::event::PollFd::new(
                    &self.socket,
                    rustix::event::PollFlags::IN,
                )];
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let limit = rustix::time::Timespec::try_from(left).ok();
                match rustix::event::poll(&mut fds, limit.as_ref()) {
                    Ok(0) => {
                        return Err(ClientError::Timeout {
                            request: text,
                            timeout,
                        });
                    }
                    Ok(_) => break,
                    // A signal (a terminal resized, a stopped and continued job): wait on.
                    Err(rustix::io::Errno::INTR) => {}
                    Err(errno) => return Err(protocol(errno.to_string())),
                }
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
