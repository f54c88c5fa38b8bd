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
use crate::log::{Line, NotLoading};
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
        pr_err!("{}\n", Line::NotLoading(NotLoading::SysfsExists));
        return Err(EEXIST);
    }
    let misc = KernfsNode::sysfs_root().and_then(|root| root.walk(&MISC_DIR));
    if misc.is_some_and(|dir| dir.child(DEVICE_NAME).is_some()) {
        // Out of tree nothing tells whose device it is; with mainline's orchestrator built in,
        // it is most likely that one, booted with liveupdate=on.
        let taken = NotLoading::MiscNameTaken {
            mainline: cfg!(CONFIG_LIVEUPDATE),
        };
        pr_err!("{}\n", Line::NotLoading(taken));
        return Err(EEXIST);
    }
    Ok(())
}
