// SPDX-License-Identifier: GPL-2.0

//! The freeze on a kexec reboot: a reboot notifier that applies [`Event::Freeze`].
//!
//! v3 freezes from inside `kernel_kexec()`; a module cannot hook there, but the first thing a
//! kexec reboot does is run the reboot notifier chain with `SYS_RESTART` and the command
//! string "kexec reboot" (`kernel_restart_prepare()`). From `prepared` this moves to `frozen`
//! before the triggering `reboot()` goes on; in any other state, and on any other reboot, the
//! state is left alone and the reboot goes ahead untouched.

use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    time::{Instant, Monotonic},
    types::Opaque, //
};

use crate::{orchestrator, Event};

// The reboot notifier chain has no Rust abstraction and its functions are not in the bindings;
// both are exported by kernel/reboot.c.
unsafe extern "C" {
    fn register_reboot_notifier(nb: *mut bindings::notifier_block) -> c_int;
    fn unregister_reboot_notifier(nb: *mut bindings::notifier_block) -> c_int;
}

/// `SYS_RESTART` of `include/linux/notifier.h` (an alias of `SYS_DOWN`), not in the bindings.
const SYS_RESTART: c_ulong = 0x0001;

/// The command string `kernel_kexec()` passes to the reboot notifiers.
const KEXEC_REBOOT: &CStr = c"kexec reboot";

/// The registration of the reboot notifier.
///
/// # Invariants
///
/// `nb` is registered on the reboot notifier chain for the lifetime of this value.
#[pin_data(PinnedDrop)]
pub(crate) struct RebootNotifier {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The notifier block is only touched by the notifier chain, under the chain's own lock;
// registering and unregistering may happen on any thread.
unsafe impl Send for RebootNotifier {}
// SAFETY: `RebootNotifier` has no `&self` methods.
unsafe impl Sync for RebootNotifier {}

impl RebootNotifier {
    /// Registers the notifier; it stays registered until the value is dropped.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            nb <- Opaque::try_ffi_init(|slot: *mut bindings::notifier_block| {
                // SAFETY: The initialiser may write to `slot`.
                unsafe {
                    slot.write(bindings::notifier_block {
                        notifier_call: Some(on_reboot),
                        next: core::ptr::null_mut(),
                        priority: 0,
                    })
                };
                // SAFETY: `slot` holds an initialised notifier block that is pinned, and `Drop`
                // unregisters it before its memory goes.
                // INVARIANT: On success the block is registered.
                to_result(unsafe { register_reboot_notifier(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for RebootNotifier {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the block is registered. Unregistering waits for a
        // running callback to return. It fails only for a block that is not on the chain,
        // which the invariant rules out, so the result carries nothing to act on.
        unsafe { unregister_reboot_notifier(self.nb.get()) };
    }
}

/// The notifier callback: freezes on a kexec reboot from `prepared`.
///
/// # Safety
///
/// Called by the reboot notifier chain, with `data` either NULL or, for `SYS_RESTART`, the
/// NUL-terminated command string of `kernel_restart_prepare()`, valid during the call.
unsafe extern "C" fn on_reboot(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    data: *mut c_void,
) -> c_int {
    if action == SYS_RESTART && !data.is_null() {
        // SAFETY: For `SYS_RESTART`, a non-NULL `data` is a NUL-terminated string that lives
        // for the duration of the call (see the function's safety section).
        let cmd = unsafe { CStr::from_char_ptr(data.cast()) };
        if cmd == KEXEC_REBOOT {
            let start = Instant::<Monotonic>::now();
            // From any state but `prepared` the table refuses the freeze and the state stays:
            // a plain kexec goes ahead untouched, so the refusal is not an error here.
            if orchestrator::raise(Event::Freeze).is_ok() {
                // luo's share of the blackout, for the demo's timeline: the whole freeze, the
                // handover record and the notify included.
                pr_info!(
                    "Froze for the kexec jump in {} us\n",
                    start.elapsed().as_micros_ceil()
                );
            }
        }
    }
    bindings::NOTIFY_DONE as c_int
}
