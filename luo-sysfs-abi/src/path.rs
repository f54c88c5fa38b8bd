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

/// The attribute that shows the live-update generation (beyond v3).
pub const GENERATION_ATTR: &CStr = c"generation";
/// The full path of the generation attribute.
pub const GENERATION_PATH: &str = "/sys/kernel/liveupdate/generation";
/// The generation attribute's mode: readable by everyone, writable by no one.
pub const GENERATION_MODE: u16 = 0o444;

/// The attribute that names the flavour: `standalone` or `observer` (beyond v3).
pub const FLAVOUR_ATTR: &CStr = c"flavour";
/// The full path of the flavour attribute.
pub const FLAVOUR_PATH: &str = "/sys/kernel/liveupdate/flavour";
/// The flavour attribute's mode: readable by everyone, writable by no one.
pub const FLAVOUR_MODE: u16 = 0o444;

/// The attribute that counts the state's transitions since boot (beyond v3).
pub const TRANSITIONS_ATTR: &CStr = c"transitions";
/// The full path of the transitions attribute.
pub const TRANSITIONS_PATH: &str = "/sys/kernel/liveupdate/transitions";
/// The transitions attribute's mode: readable by everyone, writable by no one.
pub const TRANSITIONS_MODE: u16 = 0o444;

/// One attribute of the group: the kernel registers it, the ABI document describes it, and the
/// tests check its mode, all from this table.
#[derive(Clone, Copy, Debug)]
pub struct Attribute {
    /// The file name under [`SYSFS_DIR`].
    pub name: &'static CStr,
    /// The full path.
    pub path: &'static str,
    /// The file mode.
    pub mode: u16,
}

/// `state`.
pub const STATE: Attribute = Attribute {
    name: STATE_ATTR,
    path: STATE_PATH,
    mode: STATE_MODE,
};

/// `generation`.
pub const GENERATION: Attribute = Attribute {
    name: GENERATION_ATTR,
    path: GENERATION_PATH,
    mode: GENERATION_MODE,
};

/// `flavour`.
pub const FLAVOUR: Attribute = Attribute {
    name: FLAVOUR_ATTR,
    path: FLAVOUR_PATH,
    mode: FLAVOUR_MODE,
};

/// `transitions`.
pub const TRANSITIONS: Attribute = Attribute {
    name: TRANSITIONS_ATTR,
    path: TRANSITIONS_PATH,
    mode: TRANSITIONS_MODE,
};

/// Every attribute of the group, in the order the kernel registers them.
pub const ATTRIBUTES: [Attribute; 4] = [STATE, GENERATION, FLAVOUR, TRANSITIONS];

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
    fn every_attribute_path_is_the_dir_and_its_name() {
        for attr in ATTRIBUTES {
            assert_eq!(
                std::format!("{SYSFS_DIR}/{}", attr.name.to_str().unwrap()),
                attr.path
            );
        }
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
