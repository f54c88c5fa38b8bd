//! The state attribute as a watcher sees it: `pread` at offset 0 and `poll` for `POLLPRI`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use luo_state::State;
use luo_sysfs_abi::path::{STATE_PATH, TRANSITIONS_PATH};
use luo_sysfs_abi::{parse_state, parse_transitions};

/// Opens the state attribute.
pub fn open() -> io::Result<File> {
    File::open(STATE_PATH)
}

/// The raw bytes of one read at offset 0 (this also re-arms kernfs' notification).
pub fn read_raw(file: &File) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 64];
    let len = file.read_at(&mut buf, 0)?;
    Ok(buf[..len].to_vec())
}

/// One read, parsed strictly.
pub fn read(file: &File) -> Result<State, String> {
    let bytes = read_raw(file).map_err(|err| format!("reading {STATE_PATH}: {err}"))?;
    parse_state(&bytes).map_err(|err| format!("{STATE_PATH}: {err}"))
}

/// The transition counter, fresh: open, read, close.
pub fn transitions() -> Result<u64, String> {
    let bytes =
        std::fs::read(TRANSITIONS_PATH).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))?;
    parse_transitions(&bytes).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))
}

/// A fresh open, read and close.
pub fn read_fresh() -> Result<State, String> {
    read(&open().map_err(|err| format!("opening {STATE_PATH}: {err}"))?)
}

/// What `poll` reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revents {
    /// `POLLPRI`: the attribute was notified since the last read.
    pub pri: bool,
    /// `POLLERR`: set with `POLLPRI` by kernfs, and alone when the file is gone.
    pub err: bool,
}

/// Waits up to `timeout` for `POLLPRI`; `None` when the time ran out.
pub fn poll_pri(file: &File, timeout: Duration) -> io::Result<Option<Revents>> {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `pfd` is one valid pollfd for the call's duration.
        let rc = unsafe { libc::poll(&mut pfd, 1, millis) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if rc == 0 {
            return Ok(None);
        }
        return Ok(Some(Revents {
            pri: pfd.revents & libc::POLLPRI != 0,
            err: pfd.revents & libc::POLLERR != 0,
        }));
    }
}
