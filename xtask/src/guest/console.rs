//! The kernel's own console lines that the host reads: where a boot starts, where the old
//! kernel jumps into the new one, where init starts. They are not luo's (those are
//! `luo_sysfs_abi::log`'s); each is defined here once for every reader.

/// The kernel's first line of a boot.
pub const LINUX_VERSION: &str = "Linux version";

/// The old kernel's last line, as it jumps into the new one.
pub const KEXEC_JUMP: &str = "kexec_core: Starting new kernel";

/// How the kernel's line that starts init (`Run /init as init process`) ends.
pub const INIT_PROCESS: &str = " as init process";
