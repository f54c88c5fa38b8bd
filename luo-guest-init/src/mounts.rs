//! The guest's file systems: the kernel's pseudo file systems and scratch space over the
//! host's read-only root, the host directories the script needs where scratch space would
//! cover them, and the host directories the command may write.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use luo_guest_init::protocol::{NINEP_OPTIONS, Share};
use rustix::fs::CWD;
use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags, mount, move_mount, open_tree};

/// One mount.
struct Mount {
    fstype: &'static str,
    target: &'static str,
    flags: MountFlags,
    data: &'static str,
    /// Whether the init creates the mount point: only ones on a file system it mounted itself
    /// (the host's root is read-only).
    create: bool,
    /// Whether it is mounted only when the kernel has the file system: debugfs, which a boot
    /// with `debugfs=off` leaves out (a test checks that boot), as a kernel without `DEBUG_FS`
    /// does.
    optional: bool,
}

const fn mount_of(
    fstype: &'static str,
    target: &'static str,
    flags: MountFlags,
    data: &'static str,
) -> Mount {
    Mount {
        fstype,
        target,
        flags,
        data,
        create: false,
        optional: false,
    }
}

/// proc and sysfs: nothing to execute, no devices, no set-user-ID.
pub const PSEUDO: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);
const SCRATCH: MountFlags = MountFlags::NOSUID.union(MountFlags::NODEV);

/// `/proc`, first: the command line, and the list of what is mounted already, are there.
const PROC: Mount = mount_of("proc", "/proc", PSEUDO, "");

/// The rest, in order (a mount point inside another mount comes after it). `/dev` is usually
/// mounted already by the kernel (`DEVTMPFS_MOUNT`).
const SYSTEM: &[Mount] = &[
    mount_of("sysfs", "/sys", PSEUDO, ""),
    mount_of("devtmpfs", "/dev", MountFlags::NOSUID, "mode=0755"),
    Mount {
        create: true,
        ..mount_of(
            "devpts",
            "/dev/pts",
            MountFlags::NOSUID.union(MountFlags::NOEXEC),
            "mode=0620,ptmxmode=0666",
        )
    },
    Mount {
        create: true,
        ..mount_of("tmpfs", "/dev/shm", SCRATCH, "mode=1777")
    },
    Mount {
        optional: true,
        ..mount_of("debugfs", "/sys/kernel/debug", PSEUDO, "")
    },
    mount_of("tmpfs", "/tmp", SCRATCH, "mode=1777"),
    mount_of("tmpfs", "/run", SCRATCH, "mode=0755"),
];

/// Mounts `/proc`.
pub fn mount_proc() -> Result<(), String> {
    mount_one(&PROC)
}

/// Mounts the other pseudo file systems and the scratch tmpfs, skipping what the kernel
/// mounted already, and keeps each host directory of `keep` visible at its path.
///
/// A checkout may lie where the init mounts scratch space (`/tmp/luo`), and the script runs
/// there and names its files by their host paths. So each such directory is cloned (a
/// detached bind mount of the host's directory, read-only like the whole root) before the
/// scratch mount covers it, and moved back to its path, made in the scratch space, after.
pub fn mount_system(keep: &[&str]) -> Result<(), String> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|err| format!("cannot read /proc/self/mounts: {err}"))?;
    let known = std::fs::read_to_string("/proc/filesystems")
        .map_err(|err| format!("cannot read /proc/filesystems: {err}"))?;
    let pending: Vec<&Mount> = SYSTEM
        .iter()
        .filter(|entry| !entry.optional || has_filesystem(&known, entry.fstype))
        .filter(|entry| {
            !mounted
                .lines()
                .any(|line| line.split_whitespace().nth(1) == Some(entry.target))
        })
        .collect();
    let covered: Vec<&str> = keep
        .iter()
        .copied()
        .filter(|dir| {
            pending
                .iter()
                .any(|entry| Path::new(dir).starts_with(entry.target))
        })
        .collect();
    let trees = outermost(&covered)
        .into_iter()
        .map(|dir| clone_tree(dir).map(|tree| (dir, tree)))
        .collect::<Result<Vec<_>, _>>()?;
    for entry in pending {
        mount_one(entry)?;
    }
    for (dir, tree) in trees {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create {dir} in the scratch space: {err}"))?;
        move_mount(&tree, "", CWD, dir, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|err| format!("cannot put the host's {dir} back at its path: {err}"))?;
    }
    link_dev_fd()
}

/// Whether `filesystems`, the text of `/proc/filesystems` (`[nodev]\tNAME` a line), lists
/// `fstype`.
fn has_filesystem(filesystems: &str, fstype: &str) -> bool {
    filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some(fstype))
}

/// `/dev/fd`, which udev would create: a script run from a descriptor (the agent's hooks are
/// started with `execveat`) is read by its interpreter through `/dev/fd/N`.
fn link_dev_fd() -> Result<(), String> {
    match std::os::unix::fs::symlink("/proc/self/fd", "/dev/fd") {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(format!("cannot link /dev/fd to /proc/self/fd: {err}"))
        }
        _ => Ok(()),
    }
}

/// The directories of `dirs` that lie in no other one of them: binding those back brings the
/// others along.
fn outermost<'a>(dirs: &[&'a str]) -> Vec<&'a str> {
    let mut outer: Vec<&str> = Vec::new();
    for dir in dirs {
        let inside = |other: &&str| Path::new(dir).starts_with(other);
        if !dirs.iter().any(|other| other != dir && inside(other)) && !outer.contains(dir) {
            outer.push(dir);
        }
    }
    outer
}

/// A detached copy of the mount tree at `dir` (with what is mounted below it).
fn clone_tree(dir: &str) -> Result<OwnedFd, String> {
    open_tree(
        CWD,
        dir,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|err| format!("cannot clone the host's {dir} before covering it: {err}"))
}

/// Mounts the writable host directory `share` at its host path. The mount point exists on the
/// host (the runner shares only existing directories), so it is missing only where scratch
/// space covers the host's files; it is made there.
pub fn mount_share(share: &Share) -> Result<(), String> {
    mount_share_at(share, Path::new("/"))
}

/// Mounts the writable host directory `share` at its host path under `root` (the systemd
/// mode's overlay, before it becomes the root).
pub fn mount_share_at(share: &Share, root: &Path) -> Result<(), String> {
    let target = root.join(share.path.trim_start_matches('/'));
    std::fs::create_dir_all(&target)
        .map_err(|err| format!("cannot create the mount point {}: {err}", target.display()))?;
    let data = CString::new(NINEP_OPTIONS).map_err(|err| err.to_string())?;
    mount(
        share.tag.as_str(),
        &target,
        "9p",
        MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|err| {
        format!(
            "cannot mount the writable share {} on {}: {err} (is QEMU's -device \
             virtio-9p-pci,mount_tag={} there, and does {} exist on the host?)",
            share.tag, share.path, share.tag, share.path
        )
    })
}

fn mount_one(entry: &Mount) -> Result<(), String> {
    if entry.create {
        std::fs::create_dir_all(entry.target)
            .map_err(|err| format!("cannot create the mount point {}: {err}", entry.target))?;
    } else if !Path::new(entry.target).is_dir() {
        return Err(format!(
            "cannot mount {} on {}: the host's root has no such directory",
            entry.fstype, entry.target
        ));
    }
    let data = CString::new(entry.data).map_err(|err| err.to_string())?;
    let data = (!entry.data.is_empty()).then_some(data.as_c_str());
    mount(entry.fstype, entry.target, entry.fstype, entry.flags, data)
        .map_err(|err| format!("cannot mount {} on {}: {err}", entry.fstype, entry.target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_system_is_known_by_its_whole_name() {
        let filesystems = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tdebugfs\n\text4\n";
        assert!(has_filesystem(filesystems, "debugfs"));
        assert!(has_filesystem(filesystems, "ext4"));
        assert!(!has_filesystem(filesystems, "fs"));
        assert!(!has_filesystem("nodev\tsysfs\n", "debugfs"));
    }

    #[test]
    fn only_the_outermost_directories_are_bound() {
        let keep = [
            "/tmp/a b/luo",
            "/tmp/a b/luo/target",
            "/tmp/a b/luo-other",
            "/tmp/a b/luo",
            "/root/.cache/luo/vm",
        ];
        assert_eq!(
            outermost(&keep),
            ["/tmp/a b/luo", "/tmp/a b/luo-other", "/root/.cache/luo/vm"]
        );
    }
}
