//! The counter's checkpoint protocol, shared by the `counter` example and its tests: a hook
//! (`contrib/hooks/prepared.d/10-checkpoint`) creates `DIR/checkpoint.request`; the counter
//! writes its value to
//! `DIR/checkpoint` (a temporary file, fsync, rename, fsync of the directory), removes the
//! request and exits.

// Each includer uses part of this module.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file whose presence asks the counter to checkpoint and stop.
pub const REQUEST: &str = "checkpoint.request";
/// The file holding the checkpointed value: decimal digits and a newline.
pub const CHECKPOINT: &str = "checkpoint";

/// `DIR/checkpoint.request`.
pub fn request_path(dir: &Path) -> PathBuf {
    dir.join(REQUEST)
}

/// `DIR/checkpoint`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT)
}

/// Writes `value` to `DIR/checkpoint` so that a crash leaves either the old file or the new
/// one: a temporary file, fsync, rename over, fsync of the directory.
pub fn write(dir: &Path, value: u64) -> io::Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT}.tmp.{}", std::process::id()));
    let mut file = File::create(&tmp)?;
    writeln!(file, "{value}")?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, checkpoint_path(dir))?;
    File::open(dir)?.sync_all()
}

/// Reads a checkpoint file written by [`write`].
pub fn read(path: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(path)?;
    text.trim().parse().map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold a counter ({err}): {text:?}",
                path.display()
            ),
        )
    })
}
