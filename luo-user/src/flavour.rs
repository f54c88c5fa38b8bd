//! Which flavour of luo runs: its own v3 state machine, or the observer of mainline's sessions,
//! as the read-only attribute `/sys/kernel/liveupdate/flavour` shows it.

use std::path::{Path, PathBuf};

pub use luo_sysfs_abi::Flavour;

/// The flavour the kernel shows at the standard path, or `None` when there is no such file
/// (no luo, or a luo older than the attribute, which is the standalone flavour) or it cannot be
/// read as one.
///
/// Userspace tells the flavours apart by this file, never by trying an ioctl: mainline's
/// `/dev/liveupdate` answers the v3 numbers with `EINVAL`, as the v3 device answers a refused
/// event.
pub fn flavour() -> Option<Flavour> {
    read_flavour(luo_sysfs_abi::path::FLAVOUR_PATH)
}

/// The flavour shown beside a state attribute at `state` (another mount point, or a file in a
/// test), as [`flavour`] reads it at the standard path.
pub fn flavour_beside(state: impl AsRef<Path>) -> Option<Flavour> {
    read_flavour(flavour_path_beside(state))
}

/// The flavour attribute's path beside a state attribute at `state`: the file `flavour` in the
/// same directory (`/sys/kernel/liveupdate/flavour` for the standard state path).
pub fn flavour_path_beside(state: impl AsRef<Path>) -> PathBuf {
    state.as_ref().with_file_name(FILE_NAME)
}

/// The attribute's file name (`luo_sysfs_abi::path::FLAVOUR_ATTR`; a test checks they agree).
const FILE_NAME: &str = "flavour";

fn read_flavour(path: impl AsRef<Path>) -> Option<Flavour> {
    let read = std::fs::read(path).ok()?;
    luo_sysfs_abi::parse_flavour(&read).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_state_path_has_the_standard_flavour_path_beside_it() {
        assert_eq!(
            flavour_path_beside(luo_sysfs_abi::path::STATE_PATH),
            Path::new(luo_sysfs_abi::path::FLAVOUR_PATH)
        );
    }

    #[test]
    fn the_flavour_is_read_beside_another_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(flavour_beside(&state), None);
        std::fs::write(dir.path().join("flavour"), "observer\n").unwrap();
        assert_eq!(flavour_beside(&state), Some(Flavour::Observer));
        std::fs::write(dir.path().join("flavour"), "nonsense\n").unwrap();
        assert_eq!(flavour_beside(&state), None);
    }
}
