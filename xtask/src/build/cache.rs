//! Where cached build outputs live, and the input hash that keys them.

use std::path::{Path, PathBuf};

/// The cache root: `$LUO_CACHE`, or `~/.cache/luo`.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LUO_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/luo")
}

/// A directory under the cache root, created if missing.
pub fn dir(name: &str) -> Result<PathBuf, String> {
    let dir = root().join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    Ok(dir)
}

/// A scratch directory named `name` for this checkout, created if missing: two checkouts that
/// run guests at the same time (a clone and a worktree) must not empty each other's files.
pub fn scratch(name: &str) -> Result<PathBuf, String> {
    let checkout = key(&[workspace().as_os_str().as_encoded_bytes()]);
    dir(&format!("scratch/{checkout}/{name}"))
}

/// The log file for a step.
pub fn log(name: &str) -> Result<PathBuf, String> {
    Ok(dir("logs")?.join(format!("{name}.log")))
}

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A stable 64-bit FNV-1a hash of `parts`, as 16 hex digits: enough to key a cache entry by
/// its inputs (not a security boundary).
pub fn key(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
