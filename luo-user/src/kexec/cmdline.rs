//! The next kernel's command line: assembled from words, checked against the kernel's limit.

use std::ffi::{CStr, CString};
use std::fmt;
use std::path::Path;

/// The longest command line `kexec_file_load` passes on, in bytes, terminating NUL included
/// (x86's `COMMAND_LINE_SIZE`).
pub const COMMAND_LINE_MAX: usize = 2048;

/// Where the running kernel shows its command line.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

/// The command line of the next kernel: at most [`COMMAND_LINE_MAX`] bytes with its NUL, and
/// no NUL inside.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandLine {
    text: CString,
}

/// Why a command line cannot be handed to the next kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandLineError {
    /// Longer than the kernel takes: more than [`COMMAND_LINE_MAX`], or than the next
    /// kernel's image allows (an x86 bzImage's `cmdline_size`, less the room kexec keeps).
    #[error(
        "the command line is {len} bytes with its terminating NUL, more than the {max} the next \
         kernel accepts; drop words (with --reuse-cmdline, the running kernel's own words count too)"
    )]
    TooLong {
        /// Its length, NUL included.
        len: usize,
        /// The most allowed, NUL included.
        max: usize,
    },
    /// A NUL byte inside would cut it short.
    #[error("the command line holds a NUL byte at {at}; remove it")]
    Nul {
        /// The byte offset of the NUL.
        at: usize,
    },
}

impl CommandLine {
    /// Exactly `words`, joined by single spaces (each word trimmed, empty ones dropped).
    pub fn new<I, S>(words: I) -> Result<Self, CommandLineError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut text = String::new();
        for word in words {
            let word = word.as_ref().trim();
            if word.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
        }
        Self::from_text(text)
    }

    /// The running kernel's command line `running` (as `/proc/cmdline` shows it, its newline
    /// trimmed) followed by `append`, as `kexec --reuse-cmdline --append` does: without the
    /// `BOOT_IMAGE=` word a boot loader adds, which names the running kernel's image, not the
    /// next one's (kexec-tools drops it too).
    pub fn reuse<I, S>(running: &str, append: I) -> Result<Self, CommandLineError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let running = without_boot_image(running.trim());
        let append: Vec<S> = append.into_iter().collect();
        Self::new(std::iter::once(running.as_str()).chain(append.iter().map(AsRef::as_ref)))
    }

    fn from_text(text: String) -> Result<Self, CommandLineError> {
        let len = text.len() + 1;
        if len > COMMAND_LINE_MAX {
            return Err(CommandLineError::TooLong {
                len,
                max: COMMAND_LINE_MAX,
            });
        }
        CString::new(text)
            .map(|text| CommandLine { text })
            .map_err(|err| CommandLineError::Nul {
                at: err.nul_position(),
            })
    }

    /// The words, without the NUL.
    pub fn as_str(&self) -> &str {
        // Built from a `String`, so it is UTF-8.
        self.text.to_str().unwrap_or_default()
    }

    /// The bytes the kernel receives, NUL included.
    pub fn as_c_str(&self) -> &CStr {
        &self.text
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CommandLine").field(&self.as_str()).finish()
    }
}

/// `line` without its `BOOT_IMAGE=` words; every other byte stays as it was. Words are split
/// at spaces outside double quotes, as the kernel splits its parameters.
fn without_boot_image(line: &str) -> String {
    let mut kept = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let end = word_end(rest);
        let (word, after) = rest.split_at(end);
        // The spaces after the word go with it.
        let spaces = after.len() - after.trim_start_matches(' ').len();
        let (gap, next) = after.split_at(spaces);
        if !word.starts_with("BOOT_IMAGE=") {
            kept.push_str(word);
            kept.push_str(gap);
        }
        rest = next;
    }
    kept.trim_end_matches(' ').to_owned()
}

/// The byte length of the word `text` starts with: up to the first space outside quotes.
fn word_end(text: &str) -> usize {
    let mut quoted = false;
    for (at, byte) in text.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b' ' if !quoted => return at,
            _ => {}
        }
    }
    text.len()
}

/// Reads the running kernel's command line from `path` (normally [`PROC_CMDLINE`]).
pub(crate) fn read_running(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_joins_exactly_the_given_words() {
        let line = CommandLine::new(["console=ttyS0", " quiet ", "", "luo_step=1"]).unwrap();
        assert_eq!(line.as_str(), "console=ttyS0 quiet luo_step=1");
        assert_eq!(
            line.as_c_str().to_bytes_with_nul(),
            b"console=ttyS0 quiet luo_step=1\0"
        );
    }

    #[test]
    fn no_words_is_an_empty_line_of_one_nul() {
        let line = CommandLine::new(Vec::<String>::new()).unwrap();
        assert_eq!(line.as_c_str().to_bytes_with_nul(), b"\0");
    }

    #[test]
    fn reuse_trims_the_running_line_and_appends() {
        let line = CommandLine::reuse("console=ttyS0 ro\n", ["luo_step=2"]).unwrap();
        assert_eq!(line.as_str(), "console=ttyS0 ro luo_step=2");
    }

    #[test]
    fn reuse_keeps_the_running_words_as_they_are() {
        let running = "virtme.exec=`ZWNobyBoaQo=` name=\"a b\"  rw\n";
        let line = CommandLine::reuse(running, Vec::<&str>::new()).unwrap();
        assert_eq!(line.as_str(), running.trim());
    }

    #[test]
    fn the_longest_line_fits_and_one_more_byte_does_not() {
        let longest = "x".repeat(COMMAND_LINE_MAX - 1);
        assert!(CommandLine::new([&longest]).is_ok());
        let longer = "x".repeat(COMMAND_LINE_MAX);
        assert_eq!(
            CommandLine::new([&longer]),
            Err(CommandLineError::TooLong {
                len: COMMAND_LINE_MAX + 1,
                max: COMMAND_LINE_MAX
            })
        );
    }

    #[test]
    fn too_long_names_both_lengths() {
        let err = CommandLine::reuse(&"y".repeat(2000), ["z".repeat(100)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2102 bytes") && text.contains("2048"),
            "{text}"
        );
    }

    #[test]
    fn reuse_drops_the_boot_loaders_boot_image_word() {
        let running = "BOOT_IMAGE=/boot/vmlinuz-6.1 root=/dev/sda1 ro  quiet\n";
        let line = CommandLine::reuse(running, ["luo=1"]).unwrap();
        assert_eq!(line.as_str(), "root=/dev/sda1 ro  quiet luo=1");
        let line = CommandLine::reuse("ro BOOT_IMAGE=(hd0)/vmlinuz", Vec::<&str>::new()).unwrap();
        assert_eq!(line.as_str(), "ro");
    }

    #[test]
    fn reuse_keeps_boot_image_inside_a_quoted_value() {
        let running = "init.args=\"a BOOT_IMAGE=x\" ro";
        let line = CommandLine::reuse(running, Vec::<&str>::new()).unwrap();
        assert_eq!(line.as_str(), running);
    }

    #[test]
    fn a_nul_inside_is_refused() {
        assert_eq!(
            CommandLine::new(["a\0b"]),
            Err(CommandLineError::Nul { at: 1 })
        );
    }
}
