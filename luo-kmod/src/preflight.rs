// SPDX-License-Identifier: GPL-2.0

//! The refusal to load next to another live update orchestrator, decided before anything is
//! registered.
//!
//! Registering first and failing later is not clean: `misc_register` creates the device's sysfs
//! directory before it can fail, and kernfs reports a duplicate name with a stack trace
//! (`sysfs_warn_dup`). So each name luo is about to take is looked up first, and a taken one
//! gives one log line that says what owns it and what to do.

use kernel::prelude::*;

use crate::kernfs::KernfsNode;
use crate::path::{DEVICE_NAME, GROUP_NAME};

/// Where the driver core puts the directory of a misc device without a parent:
/// `/sys/devices/virtual/misc/NAME`, the name a second `liveupdate` would collide on.
const MISC_DIR: [&CStr; 3] = [c"devices", c"virtual", c"misc"];

/// Fails with `EEXIST`, after one log line, when luo cannot own its interfaces.
///
/// A kernel built with `CONFIG_LIVEUPDATE` is no reason to refuse: mainline's orchestrator is
/// off unless the kernel was booted with `liveupdate=on`, and while it is off it registers
/// nothing. What clashes is decided here, at load time, by the names themselves.
pub(crate) fn check() -> Result {
    if KernfsNode::sys_kernel()
        .and_then(|kernel| kernel.child(GROUP_NAME))
        .is_some()
    {
        pr_err!(
            "not loading: /sys/kernel/liveupdate exists, so another orchestrator (or luo \
             itself) is loaded; unload it first\n"
        );
        return Err(EEXIST);
    }
    let misc = KernfsNode::sysfs_root().and_then(|root| root.walk(&MISC_DIR));
    if misc.is_some_and(|dir| dir.child(DEVICE_NAME).is_some()) {
        // Out of tree nothing tells whose device it is; with mainline's orchestrator built in,
        // it is most likely that one, booted with liveupdate=on.
        if cfg!(CONFIG_LIVEUPDATE) {
            pr_err!(
                "not loading: another driver owns the misc device name 'liveupdate' \
                 (/sys/devices/virtual/misc/liveupdate), on this kernel most likely mainline's \
                 live update orchestrator (liveupdate=on); for luo's state beside it, build luo \
                 in (CONFIG_LIVEUPDATE_SYSFS_API=y), or boot without liveupdate=on\n"
            );
        } else {
            pr_err!(
                "not loading: another driver owns the misc device name 'liveupdate' \
                 (/sys/devices/virtual/misc/liveupdate); unload it first\n"
            );
        }
        return Err(EEXIST);
    }
    Ok(())
}
