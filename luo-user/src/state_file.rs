//! The orchestrator's state attribute, read on demand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use luo_state::State;
use luo_sysfs_abi::{Content, SHOW_MAX_LEN};

use crate::error::Result;
use crate::kernfs::{DEFAULT_INTERVAL, KernfsFile, Wakeup};
use crate::watch::{Watcher, read_value};

/// The state attribute, opened once; each [`StateFile::state`] is one `pread` at offset 0.
#[derive(Debug)]
pub struct StateFile {
    file: KernfsFile,
}

/// Enough for every word `show` writes, and for the part of anything longer that an error
/// quotes.
const STATE_READ_CAPACITY: usize = if SHOW_MAX_LEN > Content::CAPACITY {
    SHOW_MAX_LEN + 1
} else {
    Content::CAPACITY + 1
};

impl StateFile {
    /// Opens the attribute at its standard path ([`luo_sysfs_abi::path::STATE_PATH`]).
    pub fn open_default() -> Result<Self> {
        Self::open(luo_sysfs_abi::path::STATE_PATH)
    }

    /// Opens the attribute at `path` (another mount point, or a file in a test).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with_interval(path, DEFAULT_INTERVAL)
    }

    /// Opens the attribute at `path`; if it is a plain file without inotify, a watcher made
    /// from it re-reads it every `interval` (see [`Wakeup::Interval`]).
    pub fn open_with_interval(path: impl Into<PathBuf>, interval: Duration) -> Result<Self> {
        Ok(StateFile {
            file: KernfsFile::open_with_interval(path, interval)?,
        })
    }

    /// The path the attribute was opened at.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// How a watcher made from this file notices changes.
    pub fn wakeup(&self) -> Wakeup {
        self.file.wakeup()
    }

    /// Reads the current state: one `pread` at offset 0, parsed strictly.
    pub fn state(&self) -> Result<State> {
        let mut buf = [0u8; STATE_READ_CAPACITY];
        read_value(&self.file, &mut buf)
    }

    /// Turns the file into a [`Watcher`], keeping the descriptor (the watcher reads once).
    pub fn watch(self) -> Result<Watcher<State>> {
        Watcher::new(self.file)
    }
}
