//! Whether kexec handover (KHO) is on, read from debugfs.
//!
//! KHO has no sysfs switch. A kernel built with `CONFIG_KEXEC_HANDOVER_DEBUGFS` creates the
//! debugfs directory `kho` only when KHO is enabled at boot (`kho=on`, or
//! `CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT`). So `DEBUGFS/kho` present means on. Its absence
//! means off only when debugfs is really mounted there: an unmounted `/sys/kernel/debug` is an
//! empty sysfs directory, and then nothing can be told.

use std::path::{Path, PathBuf};

use linux_raw_sys::general::DEBUGFS_MAGIC;

/// Where debugfs is normally mounted.
pub const DEBUGFS: &str = "/sys/kernel/debug";

/// What debugfs says about KHO.
#[derive(Debug)]
pub(crate) enum Kho {
    /// `DEBUGFS/kho` exists.
    On,
    /// debugfs is mounted and has no `kho` directory.
    Off,
    /// debugfs is not mounted at that path, so nothing can be told.
    Unknown,
    /// debugfs cannot be read by this user (root's alone), so nothing can be told.
    Unreadable(std::io::Error),
}

/// Reads KHO's status from debugfs mounted at `debugfs`.
///
/// A directory that is not a debugfs mount but holds entries counts as one (test roots, or a
/// debugfs seen through a bind mount); an empty one or a missing one tells nothing.
///
/// A debugfs this user may not search (mode 0700, root's) is [`Kho::Unreadable`], never off:
/// `kho` may well be there.
pub(crate) fn status(debugfs: &Path) -> Kho {
    match std::fs::metadata(debugfs.join("kho")) {
        Ok(meta) if meta.is_dir() => return Kho::On,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            return Kho::Unreadable(err);
        }
        _ => {}
    }
    if is_debugfs(debugfs) || has_entries(debugfs) {
        Kho::Off
    } else {
        Kho::Unknown
    }
}

fn is_debugfs(path: &Path) -> bool {
    rustix::fs::statfs(path)
        .ok()
        .and_then(|stat| u32::try_from(stat.f_type).ok())
        == Some(DEBUGFS_MAGIC)
}

fn has_entries(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

/// The path of KHO's directory under `debugfs`, for messages.
pub(crate) fn kho_dir(debugfs: &Path) -> PathBuf {
    debugfs.join("kho")
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    #[test]
    fn a_kho_directory_means_on() {
        let root = TempDir::new().unwrap();
        std::fs::create_dir(root.path().join("kho")).unwrap();
        assert!(matches!(status(root.path()), Kho::On));
    }

    #[test]
    fn a_populated_debugfs_without_kho_means_off() {
        let root = TempDir::new().unwrap();
        std::fs::create_dir(root.path().join("tracing")).unwrap();
        assert!(matches!(status(root.path()), Kho::Off));
    }

    #[test]
    fn an_empty_or_missing_mount_point_tells_nothing() {
        let root = TempDir::new().unwrap();
        assert!(matches!(status(root.path()), Kho::Unknown));
        assert!(matches!(status(&root.path().join("absent")), Kho::Unknown));
    }

    #[test]
    fn a_kho_file_is_not_the_directory() {
        let root = TempDir::new().unwrap();
        std::fs::write(root.path().join("kho"), b"").unwrap();
        assert!(matches!(status(root.path()), Kho::Off));
    }
}
