//! `SIGTERM` and `SIGINT` to the agent: stop the running hook with everything it started,
//! then die of the signal, as systemd and a shell expect.

use std::io;
use std::ptr;

use luo_user::hooks::Stop;

/// The signals that end the agent.
const TERMINATING: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// Blocks the terminating signals in this thread (and so in every thread it starts) and
/// starts a thread that waits for one: it stops the hooks through `stop`, then ends the
/// process with the signal. Call it before starting any other thread.
pub fn stop_on_termination(stop: Stop) -> io::Result<()> {
    let set = terminating();
    // SAFETY: a valid set; a null old set is allowed.
    let err = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signal = 0;
            // SAFETY: a valid set, and a local for the signal number.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                return;
            }
            // Held until the process ends: no hook starts in between.
            let _stopped = stop.stop();
            let mut only = empty();
            // SAFETY: the default action of a terminating signal ends the process; this
            // thread is the one that has it unblocked, so it is delivered here.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::sigaddset(&mut only, signal);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
                libc::raise(signal);
            }
            std::process::exit(128 + signal);
        })?;
    Ok(())
}

fn terminating() -> libc::sigset_t {
    let mut set = empty();
    for signal in TERMINATING {
        // SAFETY: a valid set and a valid signal number.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    set
}

fn empty() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    let mut set = unsafe { std::mem::zeroed::<libc::sigset_t>() };
    // SAFETY: a valid pointer to a set.
    unsafe { libc::sigemptyset(&mut set) };
    set
}
