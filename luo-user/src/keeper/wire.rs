//! One message on the keeper's socket: a datagram of text with up to
//! [`MAX_FILES`](super::protocol::MAX_FILES) files attached (`SCM_RIGHTS`).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
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

    use rustix::net::{AddressFamily, SocketFlags, SocketType};

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
    fn an_oversized_message_is_refused() {
        let (a, b) = pair();
        send(&a, &"x".repeat(MAX_MESSAGE + 1), &[]).unwrap();
        assert!(matches!(recv(&b), Err(WireError::Truncated)));
    }
}
