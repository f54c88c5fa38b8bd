// SPDX-License-Identifier: GPL-2.0

//! The binding of mainline LUO's observer hook: what luo, built in beside mainline's live update
//! orchestrator, learns of its sessions.
//!
//! [`Observer`] owns a notifier block registered with `liveupdate_register_observer()` for its
//! lifetime; its callback turns each event into a [`Step`] for the orchestrator. The functions
//! beside it read what mainline decided at boot. Only the in-tree build has this file: nothing
//! of mainline's orchestrator is exported to modules.

use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    types::Opaque, //
};

use crate::observed::Step;
use crate::orchestrator;

/// Whether mainline's orchestrator is on in this boot (`liveupdate=on`, with KHO on).
pub(crate) fn enabled() -> bool {
    // SAFETY: A plain read of a flag that early boot sets; callable from any context.
    unsafe { bindings::liveupdate_enabled() }
}

/// The number of this kernel's live update, as mainline logs it at boot (0 when the previous
/// kernel handed over none).
pub(crate) fn number() -> u64 {
    // SAFETY: A plain read of a value set by an early initcall, before any module initcall.
    unsafe { bindings::liveupdate_number() }
}

/// The files of the sessions the previous kernel handed over, counted at boot.
pub(crate) fn incoming_files() -> u64 {
    // SAFETY: A plain read of a value set by an early initcall, before any module initcall.
    unsafe { bindings::liveupdate_incoming_files() }
}

/// The registration of luo's observer with mainline's orchestrator.
///
/// # Invariants
///
/// `nb` is registered as an observer for the lifetime of this value.
#[pin_data(PinnedDrop)]
pub(crate) struct Observer {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The notifier block is only touched by the observers' chain, under the chain's own
// lock; registering and unregistering may happen on any thread.
unsafe impl Send for Observer {}
// SAFETY: `Observer` has no `&self` methods.
unsafe impl Sync for Observer {}

impl Observer {
    /// Registers the observer; it stays registered until the value is dropped. Fails with
    /// `EOPNOTSUPP` when mainline's orchestrator is off.
    ///
    /// Register from the initcall, before userspace can create a session, so that no step is
    /// missed between [`incoming_files`] and the first event.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            nb <- Opaque::try_ffi_init(|slot: *mut bindings::notifier_block| {
                // SAFETY: The initialiser may write to `slot`.
                unsafe {
                    slot.write(bindings::notifier_block {
                        notifier_call: Some(on_step),
                        next: core::ptr::null_mut(),
                        priority: 0,
                    })
                };
                // SAFETY: `slot` holds an initialised notifier block that is pinned, and `Drop`
                // unregisters it before its memory goes.
                // INVARIANT: On success the block is registered.
                to_result(unsafe { bindings::liveupdate_register_observer(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Observer {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the block is registered. Unregistering waits for a
        // running callback to return.
        unsafe { bindings::liveupdate_unregister_observer(self.nb.get()) };
    }
}

/// The observer's callback: hands the step to the orchestrator.
///
/// It runs with the locks of the session concerned held (and, for the serialization, with the
/// serialization's lock held for good), so the orchestrator's lock, which it takes, is the
/// innermost one, and nothing it does calls back into mainline's orchestrator.
///
/// # Safety
///
/// Called by the observers' chain with an `enum liveupdate_observer_event` as `action` and, as
/// `data`, a pointer to a `u64` (the number of files concerned) valid during the call.
unsafe extern "C" fn on_step(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `data` points to a `u64` valid during the call (see the safety section).
    let files = unsafe { data.cast::<u64>().read() };
    let step = match action as u32 {
        bindings::liveupdate_observer_event_LIVEUPDATE_OBSERVE_PRESERVED => Step::Preserved(files),
        bindings::liveupdate_observer_event_LIVEUPDATE_OBSERVE_UNPRESERVED => {
            Step::Unpreserved(files)
        }
        bindings::liveupdate_observer_event_LIVEUPDATE_OBSERVE_FINISHED => Step::Finished(files),
        bindings::liveupdate_observer_event_LIVEUPDATE_OBSERVE_SERIALIZED => Step::Serialized,
        // An event newer than luo changes nothing it derives.
        _ => return bindings::NOTIFY_DONE as c_int,
    };
    orchestrator::observe(step);
    bindings::NOTIFY_DONE as c_int
}
