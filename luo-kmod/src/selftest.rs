// SPDX-License-Identifier: GPL-2.0

//! The v3 test hook: debugfs `liveupdate/luo_selftest`, whose ioctl `SELFTEST_FREEZE` (0xBA05)
//! performs the freeze (`prepared` to `frozen`) without a kexec. Beyond v3, `SELFTEST_DAMAGE`
//! (0xBA06) damages the outgoing handover record, so the tests can check that the next kernel
//! refuses it.
//!
//! `kernel::debugfs` in 7.3 offers read and write files only, no ioctl, so this file uses the
//! C API directly: a directory, one file with a static `file_operations`, removed in `Drop`.
//! It is compiled only in test builds (`--cfg luo_selftest`), and the module creates it only
//! when its `selftest` parameter is set; creating it taints the kernel with `TAINT_TEST`, since
//! the hook lets root freeze without a kexec and corrupt the outgoing handover record.

use core::ptr;

use kernel::{
    bindings,
    error::from_err_ptr,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
    str::CStrExt, //
};

use crate::{
    ioctl::{SELFTEST_DAMAGE, SELFTEST_FREEZE},
    log::Line,
    orchestrator,
    path::{SELFTEST_DIR, SELFTEST_FILE},
    Damage, Event,
};

/// The file's mode: root only.
const SELFTEST_MODE: bindings::umode_t = 0o600;

/// The file operations of `luo_selftest`.
struct Fops(bindings::file_operations);

// SAFETY: The table is never written after its constant initialisation; the kernel only reads
// it.
unsafe impl Sync for Fops {}

/// The ioctls only; `owner` makes an open file pin the module.
///
/// Both commands take a number, never a pointer, so a 32-bit caller's `arg` needs no
/// translation and `compat_ioctl` is the same function. (debugfs's full proxy in 7.3 forwards
/// `unlocked_ioctl` only, so a compat caller still gets `ENOTTY` until debugfs forwards it.)
static FOPS: Fops = Fops(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    unlocked_ioctl: Some(selftest_ioctl),
    compat_ioctl: Some(selftest_ioctl),
    ..pin_init::zeroed()
});

/// `unlocked_ioctl` and `compat_ioctl` of `luo_selftest`.
///
/// `SELFTEST_FREEZE`: the freeze, or `EINVAL` (state unchanged) when the state is not
/// `prepared`. `SELFTEST_DAMAGE`: the damage numbered `arg`, `EINVAL` for an unknown number,
/// `EOPNOTSUPP` without KHO. Any other command is `ENOTTY`.
extern "C" fn selftest_ioctl(_file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    let result = match cmd {
        SELFTEST_FREEZE => orchestrator::raise(Event::Freeze)
            .map(drop)
            .map_err(|_| EINVAL),
        SELFTEST_DAMAGE => u32::try_from(arg)
            .ok()
            .and_then(Damage::from_u32)
            .ok_or(EINVAL)
            .and_then(orchestrator::damage_record),
        _ => Err(ENOTTY),
    };
    match result {
        Ok(()) => 0,
        Err(err) => err.to_errno() as c_long,
    }
}

/// The debugfs directory `liveupdate` holding the test hook.
///
/// # Invariants
///
/// `dir` is a directory created by `debugfs_create_dir` that holds `luo_selftest`, and it
/// exists until this value is dropped.
pub(crate) struct Selftest {
    dir: *mut bindings::dentry,
}

// SAFETY: The dentry is only passed to `debugfs_remove`, which may run on any thread.
unsafe impl Send for Selftest {}
// SAFETY: `Selftest` has no `&self` methods.
unsafe impl Sync for Selftest {}

impl Selftest {
    /// Creates `/sys/kernel/debug/liveupdate/luo_selftest` and taints the kernel (`TAINT_TEST`).
    ///
    /// Logs nothing on failure: module init says which step failed.
    pub(crate) fn create() -> Result<Self> {
        // SAFETY: The name is a NUL-terminated static; a NULL parent is the debugfs root.
        let dir =
            unsafe { bindings::debugfs_create_dir(SELFTEST_DIR.as_char_ptr(), ptr::null_mut()) };
        let dir = from_err_ptr(dir)?;
        // SAFETY: `dir` is the directory just created; the name is a NUL-terminated static;
        // `FOPS` is a static that outlives the file, which `Drop` removes. debugfs wraps the
        // operations in its full proxy, so removal waits for running ioctls.
        let file = unsafe {
            bindings::debugfs_create_file_full(
                SELFTEST_FILE.as_char_ptr(),
                SELFTEST_MODE,
                dir,
                ptr::null_mut(),
                ptr::null(),
                &FOPS.0,
            )
        };
        if let Err(err) = from_err_ptr(file) {
            // SAFETY: `dir` is the directory created above, not yet shared with anyone.
            unsafe { bindings::debugfs_remove(dir) };
            return Err(err);
        }
        // SAFETY: `add_taint` may be called from any context; setting a taint flag that does not
        // make lockdep's data unreliable leaves lockdep on (`LOCKDEP_STILL_OK`).
        unsafe { bindings::add_taint(bindings::TAINT_TEST, bindings::lockdep_ok_LOCKDEP_STILL_OK) };
        pr_warn!("{}\n", Line::TestHookCreated);
        // INVARIANT: The directory and its file exist.
        Ok(Self { dir })
    }
}

impl Drop for Selftest {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `dir` exists; removing it removes the file too and
        // waits for running file operations to end.
        unsafe { bindings::debugfs_remove(self.dir) };
    }
}
