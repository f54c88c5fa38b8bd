//! The live update generation: how many live updates this machine went through since its last
//! cold boot, as the read-only attribute `/sys/kernel/liveupdate/generation` shows it.
//!
//! The module learns it from the handover record that the previous kernel left in kexec
//! handover (KHO) memory: 0 after a cold boot (or a plain kexec, or with KHO off), `g + 1`
//! after a live update from generation `g`.

use std::path::{Path, PathBuf};

use luo_sysfs_abi::{GENERATION_SHOW_MAX_LEN, parse_generation};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{ContentError, Error, Op, Result};

/// Reads the generation at its standard path ([`luo_sysfs_abi::path::GENERATION_PATH`]).
pub fn generation() -> Result<u64> {
    read_generation(luo_sysfs_abi::path::GENERATION_PATH)
}

/// Reads the generation attribute at `path` (another mount point, or a file in a test): one
/// read at offset 0, parsed strictly.
pub fn read_generation(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let error = |op, errno| Error::from_errno(PathBuf::from(path), op, errno);
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|errno| error(Op::Open, errno))?;
    // One byte more than `show` writes, so a longer content is seen as such.
    let mut buf = [0u8; GENERATION_SHOW_MAX_LEN + 1];
    let len = loop {
        match rustix::io::pread(&fd, &mut buf, 0) {
            Err(Errno::INTR) => continue,
            other => break other.map_err(|errno| error(Op::Read, errno))?,
        }
    };
    parse_generation(buf.get(..len).unwrap_or_default()).map_err(|err| Error::Content {
        path: path.to_path_buf(),
        source: ContentError::Abi(err),
    })
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    fn file(content: &[u8]) -> (TempDir, PathBuf) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("generation");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_what_show_writes() {
        let (_dir, path) = file(b"2\n");
        assert_eq!(read_generation(&path).unwrap(), 2);
    }

    #[test]
    fn zero_is_a_cold_boot() {
        let (_dir, path) = file(b"0\n");
        assert_eq!(read_generation(&path).unwrap(), 0);
    }

    #[test]
    fn garbage_is_a_content_error_naming_the_generation() {
        let (_dir, path) = file(b"two\n");
        let err = read_generation(&path).unwrap_err();
        assert!(matches!(err, Error::Content { .. }), "{err:?}");
        assert!(err.to_string().contains("generation"), "{err}");
    }

    #[test]
    fn a_longer_content_is_refused_not_cut() {
        let long = format!("{}\n", "1".repeat(GENERATION_SHOW_MAX_LEN + 5));
        let (_dir, path) = file(long.as_bytes());
        assert!(read_generation(&path).is_err());
    }
}
