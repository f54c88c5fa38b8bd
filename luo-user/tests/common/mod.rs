//! A private cgroup2 mount with a child group, whose `cgroup.events` is a real kernfs file
//! notified the way the luo state attribute is: `populated` flips when a process moves in or
//! out. Needs root.

#![allow(dead_code)] // each test file uses part of this module

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use luo_user::{ContentError, Decode};
use rustix::mount::{MountFlags, UnmountFlags};
use tempfile::TempDir;

/// Long enough for any wake that should come, even on a loaded machine.
pub const SHOULD_WAKE: Duration = Duration::from_secs(20);
/// Short: a wait that should not end early is bounded by this.
pub const SHOULD_NOT_WAKE: Duration = Duration::from_millis(300);
/// cgroup defers a notify that follows another within 10 ms to a timer; waiting this long
/// after moving a process lets every deferred notify land before the test reads.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The `populated` line of `cgroup.events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Populated(pub bool);

impl Decode for Populated {
    fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ContentError::Other(e.to_string()))?;
        text.lines()
            .find_map(|line| line.strip_prefix("populated "))
            .and_then(|value| match value {
                "0" => Some(Populated(false)),
                "1" => Some(Populated(true)),
                _ => None,
            })
            .ok_or_else(|| ContentError::Other(format!("no populated line in {text:?}")))
    }
}

/// A cgroup2 hierarchy mounted on a temporary directory, a child group in it, and a sleeping
/// process to move in and out. Everything is undone in `Drop`.
pub struct Cgroup {
    mount: TempDir,
    child: PathBuf,
    sleeper: Child,
    removed: bool,
}

impl Cgroup {
    /// Mounts the hierarchy and creates an empty child group with a unique name (cgroup2 is
    /// one hierarchy per machine, shared by every mount and every test running in parallel).
    pub fn new() -> Cgroup {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mount = TempDir::new().expect("create a mount point");
        rustix::mount::mount("none", mount.path(), "cgroup2", MountFlags::empty(), None)
            .expect("mount cgroup2 (tests must run as root)");
        let name = format!(
            "luo-user-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let child = mount.path().join(name);
        fs::create_dir(&child).expect("create the child group");
        let sleeper = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        Cgroup {
            mount,
            child,
            sleeper,
            removed: false,
        }
    }

    /// The child's `cgroup.events`.
    pub fn events(&self) -> PathBuf {
        self.child.join("cgroup.events")
    }

    /// Moves the sleeper into the child group: `populated 1`.
    pub fn populate(&self) {
        self.move_sleeper_to(&self.child);
    }

    /// Moves the sleeper back to the root group: `populated 0`.
    pub fn depopulate(&self) {
        self.move_sleeper_to(self.mount.path());
    }

    /// Removes the (empty) child group, as unloading the module removes the state attribute.
    pub fn remove(&mut self) {
        fs::remove_dir(&self.child).expect("rmdir the child group");
        self.removed = true;
    }

    fn move_sleeper_to(&self, group: &Path) {
        fs::write(group.join("cgroup.procs"), self.sleeper.id().to_string())
            .expect("move the sleeper");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Move the sleeper out first, so the group is empty at once (an exiting process
        // leaves its group asynchronously).
        let _ = fs::write(
            self.mount.path().join("cgroup.procs"),
            self.sleeper.id().to_string(),
        );
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
        if !self.removed {
            let give_up = Instant::now() + Duration::from_secs(5);
            while fs::remove_dir(&self.child).is_err() && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // Detach: a test that failed may still hold a file of the mount open.
        let _ = rustix::mount::unmount(self.mount.path(), UnmountFlags::DETACH);
    }
}

/// CPU time consumed by the calling thread: a spinning watcher burns it, a sleeping one not.
pub fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// A private ramfs mount: a file system whose files the watcher re-reads at an interval (it
/// assumes inotify only on the common local file systems). Unmounted in `Drop`.
pub struct Ramfs {
    mount: TempDir,
}

impl Ramfs {
    /// Mounts an empty ramfs on a temporary directory. Needs root.
    pub fn new() -> Ramfs {
        let mount = TempDir::new().expect("create a mount point");
        rustix::mount::mount("none", mount.path(), "ramfs", MountFlags::empty(), None)
            .expect("mount ramfs (tests must run as root)");
        Ramfs { mount }
    }

    /// The mount's root.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.mount.path(), UnmountFlags::DETACH);
    }
}
