//! The systemd readiness protocol, written by hand: one datagram per message to the socket
//! named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). See
//! sd_notify(3); no library is needed for a few lines.

use std::ffi::OsString;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for; `None` when it is not set (not under systemd's
    /// `Type=notify`).
    pub fn from_env() -> Option<io::Result<Notifier>> {
        std::env::var_os("NOTIFY_SOCKET").map(|name| Notifier::new(&name))
    }

    /// A notifier sending to the socket `name` (`/run/...` or `@abstract`).
    pub fn new(name: &OsString) -> io::Result<Notifier> {
        let bytes = name.as_bytes();
        let addr = match bytes.split_first() {
            Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name)?,
            Some((b'/', _)) => SocketAddr::from_pathname(name)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "NOTIFY_SOCKET={} is neither a path nor @name",
                        name.to_string_lossy()
                    ),
                ));
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one message, such as `READY=1` or `STATUS=...` (newline-separated assignments).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket.send_to_addr(message.as_bytes(), &self.addr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    #[test]
    fn a_message_arrives_as_one_datagram_on_a_path_socket() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(&path.clone().into_os_string()).unwrap();
        notifier.send("READY=1\nSTATUS=state normal").unwrap();
        let mut buf = [0u8; 64];
        let len = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=state normal");
    }

    #[test]
    fn an_abstract_socket_is_named_with_an_at_sign() {
        let name = format!("luoctl-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let notifier = Notifier::new(&format!("@{name}").into()).unwrap();
        notifier.send("READY=1").unwrap();
        let mut buf = [0u8; 16];
        let len = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn a_relative_name_is_refused() {
        assert!(Notifier::new(&"relative".into()).is_err());
    }
}
