//! Stopping the running hook from elsewhere: the agent's `SIGTERM` handler, say.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::{fmt, io};

use rustix::event::EventfdFlags;

/// Stops the hook that runs, with everything it started, as its timeout would, and keeps
/// any other from starting. Clones share one state, so one can be handed to a thread that
/// waits for signals while the hooks run on another.
#[derive(Clone)]
pub struct Stop {
    inner: Arc<Inner>,
}

struct Inner {
    /// Readable once stopped: the hook's wait polls it beside the hook.
    event: OwnedFd,
    stopped: AtomicBool,
    /// Held while a hook runs.
    running: Mutex<()>,
}

/// Held by the caller of [`Stop::stop`]: while it lives, no hook runs.
#[must_use = "hooks may start again once it is dropped"]
pub struct Stopped<'a> {
    _running: MutexGuard<'a, ()>,
}

impl Stop {
    /// A handle on which nothing was stopped yet.
    pub fn new() -> io::Result<Self> {
        let event = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Stop {
            inner: Arc::new(Inner {
                event,
                stopped: AtomicBool::new(false),
                running: Mutex::new(()),
            }),
        })
    }

    /// Stops the running hook, if any, and returns once it and what it started are gone (or
    /// given up on, within the bounds of a timeout). No hook starts afterwards.
    pub fn stop(&self) -> Stopped<'_> {
        // Release: pairs with the Acquire in `begin`, under the lock.
        self.inner.stopped.store(true, Ordering::Release);
        // A full counter (EAGAIN) is readable already.
        let _ = rustix::io::write(&self.inner.event, &1u64.to_ne_bytes());
        Stopped {
            _running: self.lock(),
        }
    }

    /// Whether [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    /// Marks a hook as running; `None` once stopped.
    pub(crate) fn begin(&self) -> Option<MutexGuard<'_, ()>> {
        let running = self.lock();
        (!self.is_stopped()).then_some(running)
    }

    /// Readable once stopped.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inner.event.as_fd()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic while it was held left nothing half-done.
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}
