// SPDX-License-Identifier: GPL-2.0

//! The freeze on a kexec reboot: a reboot notifier that applies [`Event::Freeze`].
//!
//! v3 freezes from inside `kernel_kexec()`; a module cannot hook there, but the first thing a
//! kexec reboot does is run the reboot notifier chain with `SYS_RESTART` and the command
//! string "kexec reboot" (`kernel_restart_prepare()`). From `prepared` this moves to `frozen`
//! before the triggering `reboot()` goes on; in any other state, and on any other reboot, the
//! state is left alone and the reboot goes ahead untouched.
//!
//! The command string can be forged: `reboot(LINUX_REBOOT_CMD_RESTART2, "kexec reboot")` runs
//! the notifiers with it before a cold restart. Built in, luo asks the kernel instead:
//! `kernel_kexec()` sets `kexec_in_progress` just before it runs the notifiers, and nothing
//! else sets it. A module cannot read that flag (it is not exported), so out of tree the string
//! decides; a forged one freezes a machine that then restarts cold, whose next boot finds no
//! handover and comes up `normal`.

use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    time::{Instant, Monotonic},
    types::Opaque, //
};

use crate::log::{Froze, Line};
use crate::{orchestrator, Event};

// The reboot notifier chain has no Rust abstraction and its functions are not in the bindings;
// both are exported by kernel/reboot.c. `decls.c` checks these declarations against
// `<linux/reboot.h>`.
unsafe extern "C" {
    fn register_reboot_notifier(nb: *mut bindings::notifier_block) -> c_int;
    fn unregister_reboot_notifier(nb: *mut bindings::notifier_block) -> c_int;
}

// Set by `kernel_kexec()` (kernel/kexec_core.c) before the reboot notifiers run; not exported,
// so only a built-in can read it. `decls.c` checks the declaration against `<linux/kexec.h>`.
#[cfg(all(not(MODULE), CONFIG_KEXEC_CORE))]
unsafe extern "C" {
    static kexec_in_progress: bool;
}

/// Whether the reboot that runs the notifiers with `cmd` is a kexec.
fn is_kexec(cmd: &CStr) -> bool {
    #[cfg(all(not(MODULE), CONFIG_KEXEC_CORE))]
    {
        let _ = cmd;
        // SAFETY: The flag is a `bool` the kernel writes once, before the notifiers run, on the
        // CPU that runs them; a volatile read sees it.
        unsafe { core::ptr::addr_of!(kexec_in_progress).read_volatile() }
    }
    #[cfg(not(all(not(MODULE), CONFIG_KEXEC_CORE)))]
    {
        cmd == KEXEC_REBOOT
    }
}

/// `SYS_RESTART` of `include/linux/notifier.h` (an alias of `SYS_DOWN`), not in the bindings.
const SYS_RESTART: c_ulong = 0x0001;

/// The command string `kernel_kexec()` passes to the reboot notifiers: what decides where
/// `kexec_in_progress` cannot be read.
#[cfg(not(all(not(MODULE), CONFIG_KEXEC_CORE)))]
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
        if is_kexec(cmd) {
            let start = Instant::<Monotonic>::now();
            // From any state but `prepared` the table refuses the freeze and the state stays:
            // a plain kexec goes ahead untouched, so the refusal is not an error here.
            if orchestrator::raise(Event::Freeze).is_ok() {
                // luo's share of the blackout, for the demo's timeline: the whole freeze, the
                // handover record and the notify included.
                let froze = Froze {
                    micros: start.elapsed().as_micros_ceil(),
                };
                pr_info!("{}\n", Line::Froze(froze));
            }
        }
    }
    bindings::NOTIFY_DONE as c_int
}
