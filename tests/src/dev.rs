//! `/dev/liveupdate` and the test hook, driven with raw ioctls so that the kernel tests depend
//! on nothing but the ABI in `luo-state`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

use luo_state::ioctl::{
    GET_STATE, GetStateArg, SELFTEST_DAMAGE, SELFTEST_FREEZE, SET_EVENT, SetEventArg,
};
use luo_state::{Damage, Event, State};
use luo_sysfs_abi::path::{DEVICE_PATH, SELFTEST_PATH};

/// Opens the control device read-write.
pub fn open() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(DEVICE_PATH)
}

/// Issues `cmd` with a pointer to `arg`, as every v3 command does; returns the errno on failure.
///
/// # Safety
/// `arg` must point to at least as many bytes as the kernel may read or write for `cmd`
/// (its `size` field says how many).
unsafe fn ioctl_ptr<T>(file: &File, cmd: u32, arg: *mut T) -> Result<(), i32> {
    // SAFETY: the fd is open for the call's duration; the caller guarantees `arg`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::c_ulong::from(cmd), arg) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `GET_STATE`: the state's raw number.
pub fn get_state_raw(file: &File) -> Result<u32, i32> {
    let mut arg = GetStateArg::request();
    // SAFETY: `arg` is a live GetStateArg whose size field is its own size.
    unsafe { ioctl_ptr(file, GET_STATE, &mut arg) }?;
    Ok(arg.state)
}

/// `GET_STATE`, decoded.
pub fn get_state(file: &File) -> Result<State, String> {
    let raw = get_state_raw(file).map_err(|errno| format!("GET_STATE failed: errno {errno}"))?;
    State::from_u32(raw).ok_or_else(|| format!("GET_STATE returned unknown state {raw}"))
}

/// `SET_EVENT` with any event number.
pub fn set_event_raw(file: &File, event: u32) -> Result<(), i32> {
    let mut arg = SetEventArg {
        size: SetEventArg::new(Event::Prepare).size,
        event,
    };
    // SAFETY: `arg` is a live SetEventArg whose size field is its own size.
    unsafe { ioctl_ptr(file, SET_EVENT, &mut arg) }
}

/// `SET_EVENT` for `event`.
pub fn set_event(file: &File, event: Event) -> Result<(), i32> {
    set_event_raw(file, event.as_u32())
}

/// Makes `event` happen the way each event can: FREEZE through the test hook (userspace may
/// not send it), the others through `SET_EVENT`; the error names the event and the errno.
pub fn trigger(file: &File, event: Event) -> Result<(), String> {
    let result = match event {
        Event::Freeze => selftest_freeze(),
        event => set_event(file, event),
    };
    result.map_err(|errno| format!("{event}: errno {errno}"))
}

/// Issues `cmd` with a buffer of `bytes`, whose first four bytes are set to `size`: for the
/// size and zero-tail checks.
pub fn ioctl_with_buffer(file: &File, cmd: u32, size: u32, bytes: &mut [u8]) -> Result<(), i32> {
    if let Some(head) = bytes.get_mut(..4) {
        head.copy_from_slice(&size.to_ne_bytes());
    }
    assert!(
        bytes.len() >= size as usize,
        "test bug: buffer shorter than size"
    );
    // SAFETY: the kernel reads or writes at most `size` bytes, and the buffer is that long.
    unsafe { ioctl_ptr(file, cmd, bytes.as_mut_ptr()) }
}

fn open_selftest() -> Result<File, i32> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(SELFTEST_PATH)
        .map_err(|err| err.raw_os_error().unwrap_or(0))
}

/// The test hook's freeze (`prepared` to `frozen` without a kexec).
pub fn selftest_freeze() -> Result<(), i32> {
    let hook = open_selftest()?;
    // SAFETY: the hook's command takes no argument; a null pointer is never dereferenced.
    unsafe { ioctl_ptr(&hook, SELFTEST_FREEZE, std::ptr::null_mut::<u8>()) }
}

/// The test hook's damage of the outgoing handover record, by its raw number.
pub fn selftest_damage_raw(damage: u32) -> Result<(), i32> {
    let hook = open_selftest()?;
    // SAFETY: the command takes its argument by value; the kernel never dereferences it.
    let rc = unsafe {
        libc::ioctl(
            hook.as_raw_fd(),
            libc::c_ulong::from(SELFTEST_DAMAGE),
            libc::c_ulong::from(damage),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// The test hook's damage of the outgoing handover record.
pub fn selftest_damage(damage: Damage) -> Result<(), i32> {
    selftest_damage_raw(damage as u32)
}
