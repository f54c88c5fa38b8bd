// SPDX-License-Identifier: GPL-2.0

//! `/dev/liveupdate`: the control device, with the v3 ioctls `GET_STATE` and `SET_EVENT`.
//!
//! The numbers, the argument structs and every rule (size checks, zero tail, which events
//! userspace may send) come from `ioctl.rs` of `luo-state`; this file only moves bytes between
//! userspace and those functions and turns their refusals into errnos.

use kernel::{
    fs::File,
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::{AtomicFlag, Relaxed},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    capability,
    ioctl::{
        self, AbiError, Command, GetStateArg, SetEventArg, GET_STATE, IOCTL_TYPE, SELFTEST_DAMAGE,
        SELFTEST_FREEZE, SET_EVENT,
    },
    orchestrator,
    path::DEVICE_NAME,
};

// `ioctl.rs` computes the numbers itself, because userspace shares it; the kernel's own
// `_IO()` must agree, or the two sides would speak different numbers.
const _: () = assert!(GET_STATE == _IO(IOCTL_TYPE, 0x03));
const _: () = assert!(SET_EVENT == _IO(IOCTL_TYPE, 0x04));
const _: () = assert!(SELFTEST_FREEZE == _IO(IOCTL_TYPE, 0x05));
const _: () = assert!(SELFTEST_DAMAGE == _IO(IOCTL_TYPE, 0x06));

// SAFETY: `repr(C)` with two `u32` fields and no padding (its size is asserted to be 8 in
// `ioctl.rs`), so every bit pattern is a valid value.
unsafe impl FromBytes for GetStateArg {}
// SAFETY: As above: no padding, so every byte of a value is initialised.
unsafe impl AsBytes for GetStateArg {}
// SAFETY: `repr(C)` with two `u32` fields and no padding (its size is asserted to be 8 in
// `ioctl.rs`), so every bit pattern is a valid value.
unsafe impl FromBytes for SetEventArg {}

/// Whether `/dev/liveupdate` is open: v3 admits one opener at a time.
///
/// Set by the `open` that wins, cleared by its `release`.
static OPEN: AtomicFlag = AtomicFlag::new(false);

/// Registers `/dev/liveupdate`.
///
/// The node's mode is devtmpfs's default for a misc device without its own mode: 0600. Fails
/// with `EEXIST` when a misc device of that name exists, which `preflight` checked before;
/// logs nothing: module init says which step failed.
pub(crate) fn register() -> Result<Pin<KBox<MiscDeviceRegistration<Control>>>> {
    let options = MiscDeviceOptions { name: DEVICE_NAME };
    KBox::pin_init(MiscDeviceRegistration::register(options), GFP_KERNEL)
}

/// An open `/dev/liveupdate`. It holds nothing: the state is the orchestrator's.
pub(crate) struct Control;

#[vtable]
impl MiscDevice for Control {
    type Ptr = ();

    /// Admits one opener that holds `CAP_SYS_BOOT` (`EPERM` otherwise, `EBUSY` while another
    /// has it open).
    ///
    /// The node's mode (0600, root) is not enough on its own: a udev rule or a `chmod` that
    /// widens it would let anyone with access `PREPARE`, which arms the next kexec as a live
    /// update. The check is made at open, as `/dev/mem` checks `CAP_SYS_RAWIO`, so a holder
    /// may pass the open file to a helper; mainline's orchestrator relies on the mode alone.
    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<()> {
        if !capability::sys_boot() {
            return Err(EPERM);
        }
        // Relaxed is enough: the flag guards no data, it only counts openers.
        if OPEN.cmpxchg(false, true, Relaxed).is_err() {
            return Err(EBUSY);
        }
        Ok(())
    }

    fn release(_device: (), _file: &File) {
        OPEN.store(false, Relaxed);
    }

    fn ioctl(_device: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let arg = UserPtr::from_addr(arg);
        match Command::decode(cmd).map_err(to_error)? {
            Command::GetState => get_state(arg)?,
            Command::SetEvent => set_event(arg)?,
        }
        Ok(0)
    }
}

/// `GET_STATE`: writes the current state into the caller's struct.
fn get_state(arg: UserPtr) -> Result {
    let request = read_arg::<GetStateArg>(arg, Command::GetState)?;
    let reply = GetStateArg {
        size: request.size,
        state: orchestrator::current().as_u32(),
    };
    // The caller's struct is at least as large as ours and its tail is zero already, so
    // copying our struct is copying the output for the caller's size.
    UserSlice::new(arg, Command::GetState.arg_size())
        .writer()
        .write(&reply)
}

/// `SET_EVENT`: applies the event, or refuses it with the state unchanged.
fn set_event(arg: UserPtr) -> Result {
    let request = read_arg::<SetEventArg>(arg, Command::SetEvent)?;
    orchestrator::change(|current| ioctl::set_event(current, request.event)).map_err(to_error)?;
    Ok(())
}

/// Reads the argument struct of `command` the way `copy_struct_from_user` does: the caller's
/// `size` must cover our struct (`EINVAL`), and any bytes past it must be zero (`E2BIG`).
/// Unlike v3, a `size` past one page is refused (`E2BIG`) before any tail byte is read.
///
/// `T` is the struct of `command`.
fn read_arg<T: FromBytes>(arg: UserPtr, command: Command) -> Result<T> {
    let len = command.arg_size();
    // The caller's struct is read once, front to back, so its `size` cannot change between the
    // check and the use (another thread of the caller may be writing it).
    let mut bytes = [0u8; MAX_ARG];
    let head = bytes.get_mut(..len).ok_or(EINVAL)?;
    let (size_bytes, rest) = head.split_at_mut(size_of::<u32>());
    let mut reader = UserSlice::new(arg, len + PAGE_SIZE).reader();
    reader.read_slice(size_bytes)?;
    let size = u32::from_ne_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]);
    let tail = ioctl::tail_len(size, len, PAGE_SIZE).map_err(to_error)?;
    reader.read_slice(rest)?;
    let value = T::from_bytes_copy(&bytes[..len]).ok_or(EINVAL)?;
    let mut left = tail;
    let mut chunk = [0u8; 64];
    while left > 0 {
        let bytes = &mut chunk[..left.min(64)];
        reader.read_slice(bytes)?;
        ioctl::check_tail(bytes).map_err(to_error)?;
        left -= bytes.len();
    }
    Ok(value)
}

/// The largest argument struct of any command: a bound for the stack copy in [`read_arg`].
const MAX_ARG: usize = 16;
const _: () = assert!(Command::GetState.arg_size() <= MAX_ARG);
const _: () = assert!(Command::SetEvent.arg_size() <= MAX_ARG);

/// The errno for a refusal, as `AbiError::errno` says.
fn to_error(err: AbiError) -> Error {
    Error::from_errno(-err.errno())
}
