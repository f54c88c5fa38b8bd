//! The child side of a hook: a reaper process that holds everything the hook starts.
//!
//! `std::process::Command` forks the reaper and calls [`reap_and_exec`] in it. The reaper
//! becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), forks the hook, and from then on
//! only reaps: whatever the hook starts, even a grandchild that calls `setsid` and whose
//! parent exits, stays below the reaper, so the parent finds all of it in `/proc` and can
//! stop it. The reaper is the leader of the hook's process group and is reaped last, so the
//! group's id cannot be reused while the group is signalled.
//!
//! - The hook exits while the reaper is not told to stop: the reaper exits the way the hook
//!   did (its status, or the same signal), and what the hook left running is left alone, as
//!   `run-parts` leaves it.
//! - `SIGTERM` to the reaper (the parent's timeout or stop): the reaper no longer exits on
//!   its own; it goes on reaping until the parent, having stopped every descendant, sends it
//!   `SIGKILL`.
//!
//! Everything here runs between `fork` and `exec` in a child of a process that may have
//! other threads: only async-signal-safe system calls, no allocation, no lock.

use std::ffi::{CStr, c_char};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

/// A `NULL`-terminated array of C strings for `execveat`, built before the fork.
#[derive(Debug)]
pub(crate) struct CArray {
    _strings: Vec<std::ffi::CString>,
    pointers: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_strings`, which the array owns and never changes; they
// are only read, in the forked child.
unsafe impl Send for CArray {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for CArray {}

impl CArray {
    /// The array of `strings`.
    pub(crate) fn new(strings: Vec<std::ffi::CString>) -> Self {
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        CArray {
            _strings: strings,
            pointers,
        }
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// What the hook runs: a file by descriptor, or what `Command` execs by path.
pub(crate) struct Exec<'a> {
    /// The checked file, to `execveat` with `AT_EMPTY_PATH`; `None`: return to `Command`.
    pub(crate) file: Option<BorrowedFd<'a>>,
    /// The hook's arguments, `argv[0]` first.
    pub(crate) argv: &'a CArray,
    /// The hook's environment.
    pub(crate) envp: &'a CArray,
}

/// Becomes the reaper and forks the hook. Returns in the hook only: with an error when the
/// `execveat` failed (for `Command` to report), or `Ok` for `Command` to exec its program.
/// The reaper itself never returns.
///
/// # Safety
///
/// Must be called in a child just forked by `Command` (from a `pre_exec` closure), and
/// nowhere else: it blocks signals, closes descriptors and exits the process.
pub(crate) unsafe fn reap_and_exec(exec: &Exec<'_>) -> io::Result<()> {
    // SAFETY: prctl with integer arguments; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // If the thread that started it dies (the agent was killed), the reaper goes too rather
    // than wait, in stop mode, for a SIGKILL nobody will send.
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let mut all = empty_set();
    // SAFETY: `all` is a valid set; a null old set is allowed.
    unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, ptr::null_mut());
    }
    // A raw clone, as `_Fork` does: glibc's `fork` would run atfork handlers and take
    // malloc's locks, which another thread of the parent may have held at the first fork.
    // SAFETY: a fork without a new stack: the child continues on a copy of this one.
    let hook = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
    if hook < 0 {
        return Err(io::Error::last_os_error());
    }
    if hook == 0 {
        // SAFETY: the hook's own process; the exec follows.
        return unsafe { exec_hook(exec) };
    }
    // SAFETY: the reaper's own process, after the fork.
    unsafe { reap(hook as libc::pid_t) }
}

/// In the hook: the default signal mask, then the checked file.
unsafe fn exec_hook(exec: &Exec<'_>) -> io::Result<()> {
    let empty = empty_set();
    // SAFETY: a valid set; a null old set is allowed.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut()) };
    let Some(file) = exec.file else {
        return Ok(());
    };
    // A script's interpreter opens the script as /dev/fd/N, so N must survive the exec.
    // SAFETY: fcntl on a descriptor the caller keeps open.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let empty_path: &CStr = c"";
    // SAFETY: the arrays are NULL-terminated arrays of C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            file.as_raw_fd(),
            empty_path.as_ptr(),
            exec.argv.as_ptr(),
            exec.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
}

/// In the reaper: reaps until the hook ends (then exits as it did) or, told to stop, until
/// `SIGKILL`.
unsafe fn reap(hook: libc::pid_t) -> ! {
    // Close `Command`'s error pipe (and all else): the parent reads it until every copy is
    // closed, and the reaper never execs to close it.
    // SAFETY: close_range with integer arguments.
    if unsafe { libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0) } != 0 {
        for fd in 3..65_536 {
            // SAFETY: closing a descriptor number, open or not.
            unsafe { libc::close(fd) };
        }
    }
    let mut wake = empty_set();
    // SAFETY: a valid set.
    unsafe {
        libc::sigaddset(&mut wake, libc::SIGCHLD);
        libc::sigaddset(&mut wake, libc::SIGTERM);
    }
    let mut stopping = false;
    let mut ended = None;
    loop {
        // SAFETY: a valid set; no siginfo wanted.
        let signal = unsafe { libc::sigwaitinfo(&wake, ptr::null_mut()) };
        stopping |= signal == libc::SIGTERM;
        // SIGCHLDs coalesce: reap everything that ended, whatever woke the reaper.
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == hook {
                ended = Some(status);
            }
        }
        if let (false, Some(status)) = (stopping, ended) {
            // SAFETY: the reaper's own process.
            unsafe { exit_as(status) }
        }
    }
}

/// Ends the reaper the way the hook ended: its exit status, or the signal that killed it.
unsafe fn exit_as(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let mut only = empty_set();
        // SAFETY: plain system calls on the reaper itself; no core dump of the reaper.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            libc::signal(signal, libc::SIG_DFL);
            libc::sigaddset(&mut only, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
            libc::kill(libc::getpid(), signal);
        }
        // SAFETY: exits the reaper (a signal that does not kill it by default).
        unsafe { libc::_exit(128 + signal) }
    }
    // SAFETY: exits the reaper.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set = unsafe { std::mem::zeroed::<libc::sigset_t>() };
    // SAFETY: a valid pointer to a set.
    unsafe { libc::sigemptyset(&mut set) };
    set
}
