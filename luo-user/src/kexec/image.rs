//! What the kernel image says about itself: the longest command line an x86 bzImage takes.
//!
//! An x86 bzImage starts with the setup header of the boot protocol
//! (Documentation/arch/x86/boot.rst): the magic `HdrS` at 0x202, the protocol version at 0x206,
//! and, from version 2.06 on, `cmdline_size` at 0x238, the longest command line the kernel
//! accepts without its NUL (2047 on a usual build). `kexec_file_load` on x86
//! (arch/x86/kernel/kexec-bzimage64.c) keeps room for an `elfcorehdr=` word it may append,
//! and refuses `EINVAL` when the line's length with its NUL plus
//! [`ELFCOREHDR_RESERVE`] exceeds `cmdline_size`. Checking that here turns a bare `EINVAL`
//! from the kernel into a message with both numbers, before anything is loaded.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Where the setup header's fields are, and what they hold.
const MAGIC_AT: usize = 0x202;
const MAGIC: &[u8; 4] = b"HdrS";
const VERSION_AT: usize = 0x206;
const CMDLINE_SIZE_AT: usize = 0x238;
/// The first protocol version with `cmdline_size`.
const CMDLINE_SIZE_SINCE: u16 = 0x0206;
/// The bytes read: up to the end of `cmdline_size`.
const HEADER_LEN: usize = CMDLINE_SIZE_AT + 4;

/// The bytes x86's `kexec_file_load` keeps free for ` elfcorehdr=0x<address>`
/// (`MAX_ELFCOREHDR_STR_LEN`).
pub const ELFCOREHDR_RESERVE: usize = 30;

/// The longest command line, NUL included, that `kernel` accepts through `kexec_file_load`,
/// if its header says so: `None` for an image that is not a bzImage of protocol 2.06 or later
/// (the kernel then checks it alone).
pub(crate) fn command_line_max(kernel: &File) -> io::Result<Option<usize>> {
    let mut header = [0u8; HEADER_LEN];
    match kernel.read_exact_at(&mut header, 0) {
        Ok(()) => Ok(max_from_header(&header)),
        // Too short to be a bzImage: the kernel says ENOEXEC, with its own message.
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

/// The limit a setup header `header` sets, NUL included (see [`command_line_max`]).
fn max_from_header(header: &[u8; HEADER_LEN]) -> Option<usize> {
    if &header[MAGIC_AT..MAGIC_AT + 4] != MAGIC {
        return None;
    }
    let version = u16::from_le_bytes([header[VERSION_AT], header[VERSION_AT + 1]]);
    if version < CMDLINE_SIZE_SINCE {
        return None;
    }
    let mut size = [0u8; 4];
    size.copy_from_slice(&header[CMDLINE_SIZE_AT..HEADER_LEN]);
    let size = usize::try_from(u32::from_le_bytes(size)).ok()?;
    // The kernel refuses `len + ELFCOREHDR_RESERVE > cmdline_size`.
    Some(size.saturating_sub(ELFCOREHDR_RESERVE))
}

/// A setup header with protocol `version` and `cmdline_size`: the start of a crafted image.
#[cfg(test)]
pub(crate) fn header(version: u16, cmdline_size: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_LEN];
    bytes[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(MAGIC);
    bytes[VERSION_AT..VERSION_AT + 2].copy_from_slice(&version.to_le_bytes());
    bytes[CMDLINE_SIZE_AT..HEADER_LEN].copy_from_slice(&cmdline_size.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn max_of(bytes: &[u8]) -> Option<usize> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        command_line_max(&file).unwrap()
    }

    #[test]
    fn a_usual_bzimage_takes_2017_bytes_with_the_nul() {
        // 2047 - 30: a line of 2016 bytes and its NUL, plus 30, is 2047.
        assert_eq!(max_of(&header(0x020f, 2047)), Some(2017));
    }

    #[test]
    fn before_protocol_2_06_the_header_has_no_size() {
        assert_eq!(max_of(&header(0x0205, 2047)), None);
    }

    #[test]
    fn a_file_without_the_magic_or_too_short_sets_no_limit() {
        let mut bytes = header(0x020f, 2047);
        bytes[MAGIC_AT] = b'X';
        assert_eq!(max_of(&bytes), None);
        assert_eq!(max_of(b"not a kernel"), None);
    }

    #[test]
    fn a_size_below_the_reserve_allows_nothing() {
        assert_eq!(max_of(&header(0x020f, 10)), Some(0));
    }
}
