//! One message on the keeper's socket: a datagram of text with up to
//! [`MAX_FILES`](super::protocol::MAX_FILES) files attached (`SCM_RIGHTS`).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use super::protocol::{MAX_FILES, MAX_MESSAGE};

/// What can go wrong with one message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The system call failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The message or its files did not fit: the peer does not follow the protocol.
    #[error("a message longer than {MAX_MESSAGE} bytes or with more than {MAX_FILES} files")]
    Truncated,
    /// The message is not UTF-8.
    #[error("a message that is not UTF-8 text")]
    NotText,
    /// The peer did not take the message within the socket's send timeout.
    #[error("the peer did not take the message in time")]
    TimedOut,
}

/// A new socket of the keeper's kind: local, one datagram per message, close-on-exec. The
/// agent listens on one and each client connects one.
pub(super) fn socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Who is at the other end of a connected local socket (`SO_PEERCRED`): the effective uid of
/// the process that connected (or, seen from a client, that called `listen`), and its pid
/// when it is visible from this process's pid namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PeerCred {
    /// The peer's pid; `None` when the kernel reports 0 (a peer outside this pid namespace).
    pub pid: Option<u32>,
    /// The peer's effective uid.
    pub uid: u32,
}

/// Reads the peer's credentials of the connected local socket `socket`.
///
/// Not with rustix's `socket_peercred`: it reads the kernel's `struct ucred` straight into a
/// `UCred` whose pid is a `NonZeroI32`, and the kernel reports pid 0 for a peer in a pid
/// namespace this process cannot see (`cred_to_ucred` uses `pid_vnr`), which would be an
/// invalid value. Here the raw struct is read, and 0 becomes `None`.
pub(super) fn peer_cred(socket: impl AsFd) -> std::io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len =
        libc::socklen_t::try_from(size_of::<libc::ucred>()).expect("struct ucred is 12 bytes");
    // SAFETY: `socket` is an open descriptor for the call's duration (borrowed); `cred` is a
    // live, writable `struct ucred` and `len` holds its exact size, so the kernel writes at
    // most that many bytes into it, and every bit pattern is a valid `ucred` (three integers).
    let result = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd()),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if usize::try_from(len).ok() != Some(size_of::<libc::ucred>()) {
        return Err(std::io::Error::other(format!(
            "SO_PEERCRED returned {len} bytes, not the {} of struct ucred",
            size_of::<libc::ucred>()
        )));
    }
    Ok(PeerCred {
        pid: u32::try_from(cred.pid).ok().filter(|&pid| pid != 0),
        uid: cred.uid,
    })
}

/// Sends `text` with `files` as one datagram.
pub fn send(socket: impl AsFd, text: &str, files: &[BorrowedFd<'_>]) -> Result<(), WireError> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FILES))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !files.is_empty() && !control.push(SendAncillaryMessage::ScmRights(files)) {
        return Err(WireError::Truncated);
    }
    let iov = [IoSlice::new(text.as_bytes())];
    loop {
        // NOSIGNAL: a peer that went away is an error to report, not a reason to die.
        match rustix::net::sendmsg(&socket, &iov, &mut control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            // The send timeout (`SO_SNDTIMEO`) of a client whose agent does not read.
            Err(Errno::AGAIN) => return Err(WireError::TimedOut),
            Err(errno) => return Err(std::io::Error::from(errno).into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one datagram: its text and the files that came with it (close-on-exec).
pub fn recv(socket: impl AsFd) -> Result<(String, Vec<OwnedFd>), WireError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FILES))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match rustix::net::recvmsg(&socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(std::io::Error::from(errno).into()),
            Ok(received) => break received,
        }
    };
    // The files first: they are owned from here on, and dropped (closed) on any error below.
    let mut files = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            files.extend(fds);
        }
    }
    if received
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
    {
        return Err(WireError::Truncated);
    }
    if received.bytes == 0 && files.is_empty() {
        return Err(WireError::Closed);
    }
    buf.truncate(received.bytes);
    let text = String::from_utf8(buf).map_err(|_| WireError::NotText)?;
    Ok((text, files))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    #[test]
    fn text_and_files_arrive_together() {
        let (a, b) = pair();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"kept").unwrap();
        send(&a, "keep x 1", &[file.as_fd()]).unwrap();
        let (text, files) = recv(&b).unwrap();
        assert_eq!(text, "keep x 1");
        assert_eq!(files.len(), 1);
        let mut got = std::fs::File::from(files.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut content = String::new();
        got.read_to_string(&mut content).unwrap();
        assert_eq!(content, "kept");
    }

    #[test]
    fn a_closed_peer_is_reported_as_closed() {
        let (a, b) = pair();
        drop(a);
        assert!(matches!(recv(&b), Err(WireError::Closed)));
    }

    #[test]
    fn the_peers_credentials_are_this_process() {
        let (a, _b) = pair();
        let cred = peer_cred(&a).unwrap();
        assert_eq!(cred.uid, rustix::process::geteuid().as_raw());
        assert_eq!(cred.pid, Some(std::process::id()));
    }

    #[test]
    fn an_oversized_message_is_refused() {
        let (a, b) = pair();
        send(&a, &"x".repeat(MAX_MESSAGE + 1), &[]).unwrap();
        assert!(matches!(recv(&b), Err(WireError::Truncated)));
    }
}
