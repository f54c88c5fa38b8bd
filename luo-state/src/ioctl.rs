//! The `/dev/liveupdate` ioctl ABI of the v3 series: command numbers, argument structs and the
//! checks the kernel applies to them, as pure functions that answer with the errno to return.
//!
//! The kernel module and the userspace library both use this file, so the two sides cannot
//! disagree about a number or a rule.

use core::fmt;
use core::mem::size_of;

use crate::{next_state, Event, State, TransitionError};

/// The ioctl type byte of the live update orchestrator.
pub const IOCTL_TYPE: u32 = 0xBA;

/// The value of `_IO(0xBA, nr)`: direction and size bits are zero in every v3 command.
pub const fn io(nr: u32) -> u32 {
    (IOCTL_TYPE << 8) | nr
}

/// `LIVEUPDATE_IOCTL_GET_STATE`: read the current state into a [`GetStateArg`].
pub const GET_STATE: u32 = io(0x03);
/// `LIVEUPDATE_IOCTL_SET_EVENT`: send the event in a [`SetEventArg`].
pub const SET_EVENT: u32 = io(0x04);
/// The test hook's freeze, issued on the debugfs file `liveupdate/luo_selftest`, never on
/// `/dev/liveupdate`.
pub const SELFTEST_FREEZE: u32 = io(0x05);
/// The test hook's record damage (beyond v3), on the same debugfs file: the argument is a
/// [`crate::Damage`] number, applied to the outgoing handover record.
pub const SELFTEST_DAMAGE: u32 = io(0x06);

/// The argument of [`GET_STATE`] (`struct liveupdate_ioctl_get_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GetStateArg {
    /// Set by the caller to the size of its struct.
    pub size: u32,
    /// Written by the kernel: the state's uapi number.
    pub state: u32,
}

/// The argument of [`SET_EVENT`] (`struct liveupdate_ioctl_set_event`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SetEventArg {
    /// Set by the caller to the size of its struct.
    pub size: u32,
    /// The event's uapi number.
    pub event: u32,
}

// The uapi fixes these layouts; a change here would break every existing binary.
const _: () = assert!(size_of::<GetStateArg>() == 8);
const _: () = assert!(size_of::<SetEventArg>() == 8);

impl GetStateArg {
    /// The argument a caller passes: `size` filled in, `state` to be written by the kernel.
    pub const fn request() -> Self {
        GetStateArg {
            size: size_of::<Self>() as u32,
            state: 0,
        }
    }
}

impl SetEventArg {
    /// The argument that sends `event`.
    pub const fn new(event: Event) -> Self {
        SetEventArg {
            size: size_of::<Self>() as u32,
            event: event.as_u32(),
        }
    }
}

/// A command that `/dev/liveupdate` implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// [`GET_STATE`].
    GetState,
    /// [`SET_EVENT`].
    SetEvent,
}

impl Command {
    /// The command with number `cmd`, or [`AbiError::UnknownCommand`] (`ENOTTY`).
    pub const fn decode(cmd: u32) -> Result<Command, AbiError> {
        match cmd {
            GET_STATE => Ok(Command::GetState),
            SET_EVENT => Ok(Command::SetEvent),
            _ => Err(AbiError::UnknownCommand(cmd)),
        }
    }

    /// The number of bytes of the argument struct the kernel knows for this command.
    pub const fn arg_size(self) -> usize {
        match self {
            Command::GetState => size_of::<GetStateArg>(),
            Command::SetEvent => size_of::<SetEventArg>(),
        }
    }
}

/// Why the kernel refuses an ioctl, and so which errno it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// The command number is not one of ours: `ENOTTY`.
    UnknownCommand(u32),
    /// `size` is smaller than the struct the kernel knows: `EINVAL`.
    ArgTooSmall {
        /// What the caller declared.
        size: u32,
        /// What the kernel needs.
        needed: usize,
    },
    /// `size` is larger than the kernel's struct and a byte past it is not zero: `E2BIG`.
    NonZeroTail,
    /// `size` is past the kernel's limit, one page (see [`tail_len`]): `E2BIG`, without
    /// reading the tail.
    ArgTooLarge {
        /// What the caller declared.
        size: u32,
        /// The limit: the kernel's `PAGE_SIZE`.
        limit: usize,
    },
    /// The event number names no event: `EINVAL`.
    UnknownEvent(u32),
    /// Userspace sent an event only the kernel may raise: `EINVAL`.
    EventNotFromUserspace(Event),
    /// The current state does not accept the event: `EINVAL`.
    NotAllowed(TransitionError),
}

/// `EINVAL` on Linux.
pub const EINVAL: i32 = 22;
/// `E2BIG` on Linux.
pub const E2BIG: i32 = 7;
/// `ENOTTY` on Linux.
pub const ENOTTY: i32 = 25;

impl AbiError {
    /// The positive errno the kernel answers for this refusal.
    pub const fn errno(self) -> i32 {
        match self {
            AbiError::UnknownCommand(_) => ENOTTY,
            AbiError::NonZeroTail | AbiError::ArgTooLarge { .. } => E2BIG,
            AbiError::ArgTooSmall { .. }
            | AbiError::UnknownEvent(_)
            | AbiError::EventNotFromUserspace(_)
            | AbiError::NotAllowed(_) => EINVAL,
        }
    }
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::UnknownCommand(cmd) => write!(f, "unknown ioctl command {cmd:#x}"),
            AbiError::ArgTooSmall { size, needed } => {
                write!(f, "argument size {size} is below the {needed} bytes needed")
            }
            AbiError::NonZeroTail => {
                f.write_str("argument has non-zero bytes past the known struct")
            }
            AbiError::ArgTooLarge { size, limit } => {
                write!(f, "argument size {size} is past the {limit}-byte limit")
            }
            AbiError::UnknownEvent(raw) => write!(f, "unknown event number {raw}"),
            AbiError::EventNotFromUserspace(event) => {
                write!(
                    f,
                    "event '{event}' is raised by the kernel, not by userspace"
                )
            }
            AbiError::NotAllowed(err) => err.fmt(f),
        }
    }
}

/// How many bytes past the known struct the caller declared, after checking `size` is at least
/// `needed` (`EINVAL` otherwise) and at most `limit` (`E2BIG` otherwise). The caller must then
/// show those bytes are zero with [`check_tail`] before it acts.
///
/// The kernel passes its `PAGE_SIZE` as `limit`, the bound `perf_event_open` and
/// `sched_setattr` put on their extensible structs, so a caller cannot make it scan gigabytes
/// for a zero tail. The page size is the kernel's to know (4 KiB on x86, up to 64 KiB on arm64),
/// which is why it is a parameter here. v3 itself sets no bound.
pub const fn tail_len(size: u32, needed: usize, limit: usize) -> Result<usize, AbiError> {
    let size_bytes = size as usize;
    if size_bytes > limit {
        Err(AbiError::ArgTooLarge { size, limit })
    } else if size_bytes < needed {
        Err(AbiError::ArgTooSmall { size, needed })
    } else {
        Ok(size_bytes - needed)
    }
}

/// Accepts a stretch of the caller's bytes past the known struct only if all are zero
/// (`E2BIG` otherwise), as `copy_struct_from_user` does.
pub fn check_tail(tail: &[u8]) -> Result<(), AbiError> {
    if tail.iter().all(|byte| *byte == 0) {
        Ok(())
    } else {
        Err(AbiError::NonZeroTail)
    }
}

/// The state a `SET_EVENT` carrying `raw_event` leads to from `current`, or why it is refused.
pub const fn set_event(current: State, raw_event: u32) -> Result<State, AbiError> {
    let Some(event) = Event::from_u32(raw_event) else {
        return Err(AbiError::UnknownEvent(raw_event));
    };
    if !event.userspace_may_send() {
        return Err(AbiError::EventNotFromUserspace(event));
    }
    match next_state(current, event) {
        Ok(next) => Ok(next),
        Err(err) => Err(AbiError::NotAllowed(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_numbers_are_io_0xba_nr() {
        assert_eq!(GET_STATE, 0xBA03);
        assert_eq!(SET_EVENT, 0xBA04);
        assert_eq!(SELFTEST_FREEZE, 0xBA05);
        assert_eq!(SELFTEST_DAMAGE, 0xBA06);
    }

    #[test]
    fn per_file_commands_of_other_patches_are_enotty() {
        for nr in [0x00, 0x01, 0x02, 0x05, 0x06, 0xff] {
            let err = Command::decode(io(nr)).unwrap_err();
            assert_eq!(err.errno(), ENOTTY, "nr {nr:#x}");
        }
    }

    /// The page size of x86.
    const PAGE_4K: usize = 4096;

    #[test]
    fn a_size_below_the_struct_is_einval() {
        let err = tail_len(7, 8, PAGE_4K).unwrap_err();
        assert_eq!(err, AbiError::ArgTooSmall { size: 7, needed: 8 });
        assert_eq!(err.errno(), EINVAL);
        assert_eq!(tail_len(0, 8, PAGE_4K).unwrap_err().errno(), EINVAL);
    }

    #[test]
    fn a_larger_size_leaves_a_tail_to_check() {
        assert_eq!(tail_len(8, 8, PAGE_4K), Ok(0));
        assert_eq!(tail_len(4096, 8, PAGE_4K), Ok(4088));
    }

    #[test]
    fn a_size_past_a_page_is_e2big() {
        let err = tail_len(4097, 8, PAGE_4K).unwrap_err();
        assert_eq!(
            err,
            AbiError::ArgTooLarge {
                size: 4097,
                limit: PAGE_4K
            }
        );
        assert_eq!(err.errno(), E2BIG);
        assert_eq!(tail_len(u32::MAX, 8, PAGE_4K).unwrap_err().errno(), E2BIG);
    }

    #[test]
    fn the_limit_is_the_page_the_kernel_passes() {
        const PAGE_64K: usize = 65536;
        assert_eq!(tail_len(8192, 8, PAGE_64K), Ok(8184));
        assert_eq!(tail_len(65536, 8, PAGE_64K), Ok(65528));
        assert_eq!(tail_len(65537, 8, PAGE_64K).unwrap_err().errno(), E2BIG);
    }

    #[test]
    fn a_non_zero_tail_is_e2big() {
        assert_eq!(check_tail(&[0, 0, 0]), Ok(()));
        assert_eq!(check_tail(&[]), Ok(()));
        assert_eq!(check_tail(&[0, 1, 0]).unwrap_err().errno(), E2BIG);
    }

    #[test]
    fn freeze_from_userspace_is_einval_even_when_prepared() {
        let err = set_event(State::Prepared, Event::Freeze.as_u32()).unwrap_err();
        assert_eq!(err, AbiError::EventNotFromUserspace(Event::Freeze));
        assert_eq!(err.errno(), EINVAL);
    }

    #[test]
    fn an_unknown_event_number_is_einval() {
        assert_eq!(
            set_event(State::Normal, 4).unwrap_err(),
            AbiError::UnknownEvent(4)
        );
    }

    #[test]
    fn an_allowed_event_gives_the_next_state() {
        assert_eq!(set_event(State::Normal, 0), Ok(State::Prepared));
        assert_eq!(set_event(State::Frozen, 3), Ok(State::Normal));
        assert_eq!(set_event(State::Updated, 2), Ok(State::Normal));
    }

    #[test]
    fn a_refused_event_names_the_state() {
        let err = set_event(State::Normal, Event::Finish.as_u32()).unwrap_err();
        assert_eq!(
            err,
            AbiError::NotAllowed(TransitionError {
                state: State::Normal,
                event: Event::Finish
            })
        );
    }
}
