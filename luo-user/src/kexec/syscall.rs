//! The two system calls of a kexec reboot, each one thin safe function: `kexec_file_load(2)`
//! and `reboot(LINUX_REBOOT_CMD_KEXEC)`.
//!
//! rustix binds `reboot` but not `kexec_file_load`, so that one goes through `libc::syscall`.
//! Only `kexec_file_load` carries kexec handover (KHO) data to the next kernel; the classic
//! `kexec_load` (what `kexec -l` without `-s` uses) does not, so it is not offered here.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

/// Loads the kernel image `kernel` (and `initrd`, if any) to be started by the next kexec
/// reboot, with `cmdline` as its command line.
///
/// This is `kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags)`, where
/// `cmdline_len` counts the terminating NUL (the kernel checks that the last byte is one) and
/// `flags` is `KEXEC_FILE_NO_INITRAMFS` when there is no initrd. The kernel reads both files
/// before the call returns, so the descriptors need not outlive it.
pub(crate) fn kexec_file_load(
    kernel: BorrowedFd<'_>,
    initrd: Option<BorrowedFd<'_>>,
    cmdline: &CStr,
) -> Result<(), Errno> {
    let (initrd_fd, flags) = match initrd {
        Some(fd) => (fd.as_raw_fd(), 0),
        None => (-1, libc::KEXEC_FILE_NO_INITRAMFS),
    };
    let cmdline_len = cmdline.to_bytes_with_nul().len();
    raw_kexec_file_load(
        kernel.as_raw_fd(),
        initrd_fd,
        cmdline_len,
        Some(cmdline),
        flags,
    )
}

/// Unloads the kernel loaded by [`kexec_file_load`], if any:
/// `kexec_file_load(-1, -1, 0, NULL, KEXEC_FILE_UNLOAD)`. Nothing loaded is no error.
pub(crate) fn kexec_file_unload() -> Result<(), Errno> {
    raw_kexec_file_load(-1, -1, 0, None, libc::KEXEC_FILE_UNLOAD)
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn raw_kexec_file_load(
    kernel_fd: libc::c_int,
    initrd_fd: libc::c_int,
    cmdline_len: usize,
    cmdline: Option<&CStr>,
    flags: libc::c_int,
) -> Result<(), Errno> {
    // The flags are a few low bits, never negative.
    let flags = libc::c_ulong::try_from(flags).map_err(|_| Errno::INVAL)?;
    let cmdline = cmdline.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: the kernel reads the two descriptors, which the callers' `BorrowedFd`s keep open
    // for the whole call (or -1 with `KEXEC_FILE_NO_INITRAMFS`, which tells it not to read an
    // initrd, or with `KEXEC_FILE_UNLOAD`, which reads neither), and `cmdline_len` bytes at
    // `cmdline`, which are exactly the bytes of the `CStr` with its NUL, alive for the call
    // (0 bytes at NULL for an unload, which reads no command line). It writes no user memory.
    // Every argument has the width of the syscall's (`int`, `int`, `unsigned long`,
    // `const char *`, `unsigned long`).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel_fd,
            initrd_fd,
            cmdline_len as libc::c_ulong,
            cmdline,
            flags,
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// Architectures whose `libc` has no `kexec_file_load` number here: the call does not exist.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn raw_kexec_file_load(
    _kernel_fd: libc::c_int,
    _initrd_fd: libc::c_int,
    _cmdline_len: usize,
    _cmdline: Option<&CStr>,
    _flags: libc::c_int,
) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}

/// The errno the last failed libc call left.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn last_errno() -> Errno {
    let raw = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    Errno::from_raw_os_error(raw)
}

/// Writes every file system's dirty data out (`sync(2)`), so the jump into the next kernel,
/// which skips the normal shutdown, loses no written data.
pub(crate) fn sync() {
    rustix::fs::sync();
}

/// Reboots into the kernel loaded by [`kexec_file_load`]: `reboot(LINUX_REBOOT_CMD_KEXEC)`.
///
/// On success this does not return. The kernel runs its reboot notifiers first (the luo
/// module's moves `prepared` to `frozen` and writes its handover record there). `EINVAL` means
/// no image is loaded.
pub(crate) fn reboot_kexec() -> Result<(), Errno> {
    rustix::system::reboot(rustix::system::RebootCommand::Kexec)
}
