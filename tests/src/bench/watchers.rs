//! The Rust watchers of the latency benchmark, each run as its own process
//! (`luo-bench watch VARIANT ID`) exactly as the C floor (`poll_floor PATH ID`) runs, and
//! reporting exactly as it does (see [`super::record`]): a `READY` record after the first read,
//! then one `CHANGE` record per new word, its time taken on `CLOCK_MONOTONIC` once the watcher
//! holds the new state.
//!
//! Many watchers start as the C floor's do ([`launch`], `luo-bench watch VARIANT ID COUNT`):
//! one process forks them all and waits, out of the way, until its standard input closes.
//!
//! Four variants, from the library down to the floor, so that a difference between the library
//! and the C floor can be traced to a layer:
//!
//! - [`Variant::Library`]: `luo_user::Watcher::next_change`, what an agent calls; the time is
//!   taken when it returns;
//! - [`Variant::Kernfs`]: the library's I/O layer alone, `luo_user::KernfsFile::wait` +
//!   `read_into` + the strict parser, without the watcher's bookkeeping;
//! - [`Variant::Raw`]: the C floor's loop written in Rust with `libc` (`poll` + `pread` +
//!   compare), which separates the language and the binary from the library;
//! - [`Variant::Reread`]: `pread` every [`REREAD_PERIOD`], no notification: the baseline the
//!   notification is meant to beat.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::Duration;

use luo_sysfs_abi::parse_state;
use luo_sysfs_abi::path::STATE_PATH;
use luo_user::{KernfsFile, Watcher};

use super::monotonic_ns;
use super::record::{CHANGE, READY, Reporter};

/// The period of [`Variant::Reread`].
pub const REREAD_PERIOD: Duration = Duration::from_millis(100);

/// The read buffer of the variants that do not use the library: a state word is a few bytes.
const SMALL_READ: usize = 64;
/// The read buffer of [`Variant::Kernfs`]: the watcher's (a sysfs `show` writes at most a page).
const PAGE_READ: usize = 4096;

/// Which Rust watcher a child process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `luo_user::Watcher::next_change`.
    Library,
    /// `luo_user::KernfsFile::wait` + `read_into` + `parse_state`.
    Kernfs,
    /// `libc::poll` + `pread` + byte comparison: the C floor in Rust.
    Raw,
    /// `pread` every [`REREAD_PERIOD`].
    Reread,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 4] = [
        Variant::Library,
        Variant::Kernfs,
        Variant::Raw,
        Variant::Reread,
    ];

    /// The name on the command line and in the report.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Library => "library",
            Variant::Kernfs => "kernfs",
            Variant::Raw => "rust_raw",
            Variant::Reread => "reread_100ms",
        }
    }

    /// The variant named `name`.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Forks `count` watchers `variant` numbered `first` on, then waits until standard input
/// closes, kills and reaps them: the C floor's `launch`, so that both start alike.
///
/// Must be called while the process has one thread (`luo-bench watch` calls it first thing),
/// so that each child is a whole copy of it.
pub fn launch(variant: Variant, first: u32, count: u32) -> Result<(), String> {
    let mut pids = Vec::with_capacity(count as usize);
    let mut failed = None;
    for id in first..first.saturating_add(count) {
        // SAFETY: the process has a single thread (see above), so the child inherits no lock
        // held by another thread and may run any code; it never returns into this loop.
        match unsafe { libc::fork() } {
            0 => {
                let code = match run(variant, id) {
                    Ok(()) => 0,
                    Err(err) => {
                        eprintln!("luo-bench: {err}");
                        1
                    }
                };
                std::process::exit(code);
            }
            -1 => {
                failed = Some(format!("fork: {}", io::Error::last_os_error()));
                break;
            }
            pid => pids.push(pid),
        }
    }
    // Only the watchers keep the report pipe open, so the benchmark sees them end.
    // SAFETY: plain close(2) of standard output, which nothing in this process writes again.
    unsafe { libc::close(libc::STDOUT_FILENO) };
    if failed.is_none() {
        let mut byte = [0u8; 1];
        loop {
            match io::stdin().read(&mut byte) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    for &pid in &pids {
        // SAFETY: plain kill(2) of a child this process forked and has not reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for &pid in &pids {
        // SAFETY: waitpid(2) on our own child, with no status wanted.
        while unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
    }
    failed.map_or(Ok(()), Err)
}

/// Runs watcher `variant` as number `id` until killed (or until the attribute is removed),
/// reporting on standard output.
pub fn run(variant: Variant, id: u32) -> Result<(), String> {
    let mut out = Reporter::stdout(id).map_err(|err| format!("standard output: {err}"))?;
    let outcome = match variant {
        Variant::Library => library(&mut out),
        Variant::Kernfs => kernfs(&mut out),
        Variant::Raw => raw(&mut out),
        Variant::Reread => reread(&mut out),
    };
    outcome.map_err(|err| format!("watcher {} {id}: {err}", variant.name()))
}

fn library(out: &mut Reporter) -> Result<(), String> {
    let mut watcher = Watcher::open_default().map_err(|err| err.to_string())?;
    send(out, 0, READY, watcher.current().word().as_bytes())?;
    loop {
        if let Some(change) = watcher.next_change(None).map_err(|err| err.to_string())? {
            send(out, monotonic_ns(), CHANGE, change.state.word().as_bytes())?;
        }
    }
}

fn kernfs(out: &mut Reporter) -> Result<(), String> {
    let file = KernfsFile::open(STATE_PATH).map_err(|err| err.to_string())?;
    let mut buf = vec![0u8; PAGE_READ];
    let read = |buf: &mut [u8]| -> Result<luo_state::State, String> {
        let len = file.read_into(buf).map_err(|err| err.to_string())?;
        parse_state(&buf[..len]).map_err(|err| err.to_string())
    };
    let mut last = read(&mut buf)?;
    send(out, 0, READY, last.word().as_bytes())?;
    loop {
        if !file.wait(None).map_err(|err| err.to_string())? {
            continue;
        }
        let now = read(&mut buf)?;
        if now != last {
            send(out, monotonic_ns(), CHANGE, now.word().as_bytes())?;
            last = now;
        }
    }
}

fn raw(out: &mut Reporter) -> Result<(), String> {
    let file = File::open(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    let (mut last, mut now) = ([0u8; SMALL_READ], [0u8; SMALL_READ]);
    let mut last_len = read_word(&file, &mut last)?;
    send(out, 0, READY, &last[..last_len])?;
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd for the call's duration, its fd open (`file`).
        if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {err}"));
        }
        let len = read_word(&file, &mut now)?;
        if now[..len] != last[..last_len] {
            send(out, monotonic_ns(), CHANGE, &now[..len])?;
            last = now;
            last_len = len;
        }
    }
}

fn reread(out: &mut Reporter) -> Result<(), String> {
    let file = File::open(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    let (mut last, mut now) = ([0u8; SMALL_READ], [0u8; SMALL_READ]);
    let mut last_len = read_word(&file, &mut last)?;
    send(out, 0, READY, &last[..last_len])?;
    loop {
        thread::sleep(REREAD_PERIOD);
        let len = read_word(&file, &mut now)?;
        if now[..len] != last[..last_len] {
            send(out, monotonic_ns(), CHANGE, &now[..len])?;
            last = now;
            last_len = len;
        }
    }
}

/// One `pread` at offset 0 (which re-arms the kernfs notification), the newline cut, like the
/// C floor's `read_word`; returns the word's length.
fn read_word(file: &File, buf: &mut [u8; SMALL_READ]) -> Result<usize, String> {
    let mut len = loop {
        match file.read_at(buf, 0) {
            Ok(len) => break len,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(format!("{STATE_PATH}: {err}")),
        }
    };
    while len > 0 && buf[len - 1] == b'\n' {
        len -= 1;
    }
    Ok(len)
}

fn send(out: &mut Reporter, ns: u64, kind: u32, word: &[u8]) -> Result<(), String> {
    out.send(ns, kind, word)
        .map_err(|err| format!("reporting: {err}"))
}
