// SPDX-License-Identifier: GPL-2.0

//! The capability check of `/dev/liveupdate`'s open: `capable()` of
//! `include/linux/capability.h`, which has no Rust abstraction in 7.3.

use kernel::{bindings, ffi::c_int};

/// Whether the current task may arm the next kexec: `CAP_SYS_BOOT` in the initial user
/// namespace, the capability `kexec_load(2)` and `reboot(2)` ask for.
pub(crate) fn sys_boot() -> bool {
    // SAFETY: `capable` only reads the current task's credentials; it may be called from any
    // process context, such as a file's `open`. The constant is a valid capability number.
    unsafe { bindings::capable(bindings::CAP_SYS_BOOT as c_int) }
}
