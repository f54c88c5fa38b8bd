//! The guest's file systems: the kernel's pseudo file systems and scratch space over the
//! host's read-only root, and the host directories the command may write.

use std::ffi::CString;
use std::path::Path;

use luo_guest_init::protocol::{NINEP_OPTIONS, Share};
use rustix::mount::{MountFlags, mount};

/// One mount.
struct Mount {
    fstype: &'static str,
    target: &'static str,
    flags: MountFlags,
    data: &'static str,
    /// Whether the init creates the mount point: only ones on a file system it mounted itself
    /// (the host's root is read-only).
    create: bool,
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
    }
}

const PSEUDO: MountFlags = MountFlags::NOSUID
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
    mount_of("debugfs", "/sys/kernel/debug", PSEUDO, ""),
    mount_of("tmpfs", "/tmp", SCRATCH, "mode=1777"),
    mount_of("tmpfs", "/run", SCRATCH, "mode=0755"),
];

/// Mounts `/proc`.
pub fn mount_proc() -> Result<(), String> {
    mount_one(&PROC)
}

/// Mounts the other pseudo file systems and the scratch tmpfs, skipping what the kernel
/// mounted already.
pub fn mount_system() -> Result<(), String> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|err| format!("cannot read /proc/self/mounts: {err}"))?;
    for entry in SYSTEM {
        let already = mounted
            .lines()
            .any(|line| line.split_whitespace().nth(1) == Some(entry.target));
        if !already {
            mount_one(entry)?;
        }
    }
    link_dev_fd()
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

/// Mounts the writable host directory `share` at its host path.
pub fn mount_share(share: &Share) -> Result<(), String> {
    let data = CString::new(NINEP_OPTIONS).map_err(|err| err.to_string())?;
    mount(
        share.tag.as_str(),
        share.path.as_str(),
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
