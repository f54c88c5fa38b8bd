//! Which flavour of luo runs: its own v3 state machine, or the observer of mainline's sessions,
//! as the read-only attribute `/sys/kernel/liveupdate/flavour` shows it.

pub use luo_sysfs_abi::Flavour;

/// The flavour the kernel shows at the standard path, or `None` when there is no such file
/// (no luo, or a luo older than the attribute, which is the standalone flavour) or it cannot be
/// read as one.
///
/// Userspace tells the flavours apart by this file, never by trying an ioctl: mainline's
/// `/dev/liveupdate` answers the v3 numbers with `EINVAL`, as the v3 device answers a refused
/// event.
pub fn flavour() -> Option<Flavour> {
    let read = std::fs::read(luo_sysfs_abi::path::FLAVOUR_PATH).ok()?;
    luo_sysfs_abi::parse_flavour(&read).ok()
}
