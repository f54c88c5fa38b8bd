//! Where the live update interfaces live, and their permissions.

use core::ffi::CStr;

/// The sysfs directory: the group `liveupdate` under `/sys/kernel`.
pub const SYSFS_DIR: &str = "/sys/kernel/liveupdate";
/// The group's name under `kernel_kobj`.
pub const GROUP_NAME: &CStr = c"liveupdate";
/// The attribute that shows the state.
pub const STATE_ATTR: &CStr = c"state";
/// The full path of the state attribute.
pub const STATE_PATH: &str = "/sys/kernel/liveupdate/state";
/// The state attribute's mode: readable by everyone, writable by no one.
pub const STATE_MODE: u16 = 0o444;

/// The control device's name (a misc device).
pub const DEVICE_NAME: &CStr = c"liveupdate";
/// The control device's path.
pub const DEVICE_PATH: &str = "/dev/liveupdate";
/// The control device's mode: root only.
pub const DEVICE_MODE: u16 = 0o600;

/// The test hook's directory under debugfs.
pub const SELFTEST_DIR: &CStr = c"liveupdate";
/// The test hook's file in that directory.
pub const SELFTEST_FILE: &CStr = c"luo_selftest";
/// The test hook's full path (debugfs mounted at its usual place).
pub const SELFTEST_PATH: &str = "/sys/kernel/debug/liveupdate/luo_selftest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_path_is_the_dir_and_the_attribute() {
        let dir = SYSFS_DIR.rsplit('/').next();
        assert_eq!(dir, GROUP_NAME.to_str().ok());
        assert_eq!(
            std::format!("{SYSFS_DIR}/{}", STATE_ATTR.to_str().unwrap()),
            STATE_PATH
        );
    }

    #[test]
    fn the_selftest_path_ends_in_its_dir_and_file() {
        let expected = std::format!(
            "/sys/kernel/debug/{}/{}",
            SELFTEST_DIR.to_str().unwrap(),
            SELFTEST_FILE.to_str().unwrap()
        );
        assert_eq!(SELFTEST_PATH, expected);
    }
}
