//! Mainline LUO's userspace ABI (`include/uapi/linux/liveupdate.h` of Linux 7.3): the ioctl
//! numbers and argument layouts, checked against the header by `cargo xtask test`, which
//! compiles a C program against the 7.3 source's header and compares what it prints with
//! [`FACTS`].
//!
//! Every command is `_IO(0xBA, nr)`: direction and size bits are zero, and each argument begins
//! with its own size, as in v3.

/// The ioctl type of `/dev/liveupdate`.
pub const IOCTL_TYPE: u32 = 0xBA;
/// The longest session name, its terminating NUL included.
pub const SESSION_NAME_LENGTH: usize = 64;

const fn io(nr: u32) -> u32 {
    (IOCTL_TYPE << 8) | nr
}

/// `LIVEUPDATE_IOCTL_CREATE_SESSION`, on the device.
pub const CREATE_SESSION: u32 = io(0x00);
/// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`, on the device.
pub const RETRIEVE_SESSION: u32 = io(0x01);
/// `LIVEUPDATE_SESSION_PRESERVE_FD`, on a session.
pub const PRESERVE_FD: u32 = io(0x40);
/// `LIVEUPDATE_SESSION_RETRIEVE_FD`, on a session.
pub const RETRIEVE_FD: u32 = io(0x41);
/// `LIVEUPDATE_SESSION_FINISH`, on a session.
pub const FINISH: u32 = io(0x42);
/// `LIVEUPDATE_SESSION_GET_NAME`, on a session.
pub const GET_NAME: u32 = io(0x43);

/// `struct liveupdate_ioctl_create_session` and `struct liveupdate_ioctl_retrieve_session`
/// (the same layout): the name in, the session's fd out.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SessionArg {
    /// `sizeof` this struct.
    pub size: u32,
    /// Out: the session's file descriptor.
    pub fd: i32,
    /// In: the name, NUL-terminated.
    pub name: [u8; SESSION_NAME_LENGTH],
}

/// `struct liveupdate_session_preserve_fd` and `struct liveupdate_session_retrieve_fd` (the same
/// layout): a file descriptor and its token.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FdArg {
    /// `sizeof` this struct.
    pub size: u32,
    /// In (preserve) or out (retrieve): the file descriptor.
    pub fd: i32,
    /// The token that names the file in its session (`__aligned_u64`).
    pub token: u64,
}

/// `struct liveupdate_session_finish`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FinishArg {
    /// `sizeof` this struct.
    pub size: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct liveupdate_session_get_name`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GetNameArg {
    /// `sizeof` this struct.
    pub size: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: the name, NUL-terminated.
    pub name: [u8; SESSION_NAME_LENGTH],
}

// The sizes and offsets of the 7.3 header; `session_uapi` checks them against the header
// itself, these keep a change here from compiling quietly.
const _: () = {
    assert!(size_of::<SessionArg>() == 72);
    assert!(core::mem::offset_of!(SessionArg, fd) == 4);
    assert!(core::mem::offset_of!(SessionArg, name) == 8);
    assert!(size_of::<FdArg>() == 16);
    assert!(core::mem::offset_of!(FdArg, token) == 8);
    assert!(size_of::<FinishArg>() == 8);
    assert!(size_of::<GetNameArg>() == 72);
    assert!(core::mem::offset_of!(GetNameArg, name) == 8);
};

/// Every number of this ABI, named by the C expression that gives it in the kernel's header.
pub const FACTS: [(&str, u64); 17] = [
    ("LIVEUPDATE_IOCTL_TYPE", IOCTL_TYPE as u64),
    ("LIVEUPDATE_SESSION_NAME_LENGTH", SESSION_NAME_LENGTH as u64),
    ("LIVEUPDATE_IOCTL_CREATE_SESSION", CREATE_SESSION as u64),
    ("LIVEUPDATE_IOCTL_RETRIEVE_SESSION", RETRIEVE_SESSION as u64),
    ("LIVEUPDATE_SESSION_PRESERVE_FD", PRESERVE_FD as u64),
    ("LIVEUPDATE_SESSION_RETRIEVE_FD", RETRIEVE_FD as u64),
    ("LIVEUPDATE_SESSION_FINISH", FINISH as u64),
    ("LIVEUPDATE_SESSION_GET_NAME", GET_NAME as u64),
    (
        "sizeof(struct liveupdate_ioctl_create_session)",
        size_of::<SessionArg>() as u64,
    ),
    (
        "offsetof(struct liveupdate_ioctl_create_session, name)",
        core::mem::offset_of!(SessionArg, name) as u64,
    ),
    (
        "sizeof(struct liveupdate_ioctl_retrieve_session)",
        size_of::<SessionArg>() as u64,
    ),
    (
        "sizeof(struct liveupdate_session_preserve_fd)",
        size_of::<FdArg>() as u64,
    ),
    (
        "offsetof(struct liveupdate_session_preserve_fd, token)",
        core::mem::offset_of!(FdArg, token) as u64,
    ),
    (
        "sizeof(struct liveupdate_session_retrieve_fd)",
        size_of::<FdArg>() as u64,
    ),
    (
        "sizeof(struct liveupdate_session_finish)",
        size_of::<FinishArg>() as u64,
    ),
    (
        "sizeof(struct liveupdate_session_get_name)",
        size_of::<GetNameArg>() as u64,
    ),
    (
        "offsetof(struct liveupdate_session_get_name, name)",
        core::mem::offset_of!(GetNameArg, name) as u64,
    ),
];

/// The size field's value for `T`.
pub const fn size_of_arg<T>() -> u32 {
    size_of::<T>() as u32
}
