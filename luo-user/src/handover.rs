//! The live update marker on the kernel command line: `luo.handover=GENERATION`.
//!
//! The kernel module cannot use kexec handover (KHO) here, so a live update tells the next
//! kernel that it is one with a word on that kernel's command line. The module takes the value
//! through its `handover` parameter (`modprobe luo` reads `luo.handover=` from
//! `/proc/cmdline`; `insmod luo.ko handover=$(luoctl handover)` does the same by hand): 0 or
//! absent is a cold boot (state `normal`), anything else a live update (state `updated`).
//!
//! The generation counts live updates since the last cold boot: the kernel booted cold is
//! generation 0, and a live update from generation `g` boots generation `g + 1`. Only the live
//! update kexec ([`crate::kexec`]) writes the marker, and only from `prepared`; it strips any old
//! marker first, so a plain kexec that reuses an updated kernel's command line is not mistaken
//! for a live update.
//!
//! # How the command line is read
//!
//! The way the kernel splits its command line (`next_arg` in `lib/cmdline.c`): words are
//! separated by whitespace, except inside double quotes (`name="a value"` is one word); a
//! leading quote of a word and the quotes around a value are not part of it; a word `--` ends
//! the kernel's parameters, and what follows goes to init. Words are kept exactly as they are
//! (virtme's `virtme.exec=` is base64 in backquotes, for instance), only marker words are
//! removed. The value must be a positive decimal number without sign or leading zero, the
//! only form `luoctl` writes and one the module's parameter reads identically.
//!
//! ```
//! use luo_user::handover::{generation, next_command_line};
//!
//! assert_eq!(generation("console=ttyS0 root=/dev/vda\n")?, 0);
//! let (line, next) = next_command_line("console=ttyS0 luo.handover=2 quiet\n")?;
//! assert_eq!((line.as_str(), next), ("console=ttyS0 quiet luo.handover=3", 3));
//! assert_eq!(generation(&line)?, 3);
//! # Ok::<(), luo_user::handover::HandoverError>(())
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The name of the marker parameter: `luo.handover=GENERATION`.
pub const MARKER: &str = "luo.handover";

/// Where the running kernel shows its command line.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

/// The word that ends the kernel's parameters; the words after it are init's arguments.
const END_OF_PARAMETERS: &str = "--";

/// What is wrong with the live update marker on a command line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandoverError {
    /// The marker has no value (`luo.handover=` or `luo.handover`).
    #[error("'{word}' gives no live update generation: the marker is luo.handover=N with N > 0")]
    Empty {
        /// The marker word, as written.
        word: String,
    },
    /// The value is not a number the module parameter would accept.
    #[error(
        "'{word}' is not a live update generation: luo.handover= takes a number greater than 0"
    )]
    NotANumber {
        /// The marker word, as written.
        word: String,
    },
    /// The value is 0, which no live update writes (a cold boot has no marker).
    #[error(
        "'{word}' gives generation 0, which no live update writes (a cold boot has no marker); remove it"
    )]
    Zero {
        /// The marker word, as written.
        word: String,
    },
    /// The marker is there twice: the live update kexec writes it once, so the command line
    /// was edited by hand.
    #[error(
        "the live update marker is there twice ('{first}' and '{second}'); a live update writes it once, so the command line was edited: keep one"
    )]
    Twice {
        /// The first marker word.
        first: String,
        /// The second marker word.
        second: String,
    },
    /// The generation is `u64::MAX`: there is no next one.
    #[error("'{word}' is the last live update generation there is; boot cold to count again")]
    Exhausted {
        /// The marker word, as written.
        word: String,
    },
    /// A word to append would take the place of the marker or end the kernel's parameters.
    #[error(
        "'{word}' cannot be appended: the live update kexec writes luo.handover= itself, and '--' would hand what follows to init"
    )]
    Reserved {
        /// The word refused.
        word: String,
    },
}

/// The live update generation on `cmdline`: 0 when it has no marker.
///
/// Fails, naming the word, when the marker is malformed (no value, not a number, 0) or is there
/// twice. Words after a `--` belong to init and are not looked at.
pub fn generation(cmdline: &str) -> Result<u64, HandoverError> {
    let mut found: Option<(&str, u64)> = None;
    for word in kernel_words(cmdline) {
        let Some(value) = marker_value(word) else {
            continue;
        };
        if let Some((first, _)) = found {
            return Err(HandoverError::Twice {
                first: first.to_string(),
                second: word.to_string(),
            });
        }
        found = Some((word, parse_generation(word, value)?));
    }
    Ok(found.map_or(0, |(_, generation)| generation))
}

/// The command line for the next kernel of a live update, and its generation.
///
/// Every `luo.handover=...` word of `cmdline` is removed and `luo.handover=g+1` appended to the
/// kernel's parameters (before a `--`, if there is one), where `g` is [`generation`]`(cmdline)`.
/// The other words keep their order and their bytes; whitespace between them becomes one space,
/// and the trailing newline of `/proc/cmdline` goes.
pub fn next_command_line(cmdline: &str) -> Result<(String, u64), HandoverError> {
    next_command_line_with(cmdline, "")
}

/// [`next_command_line`], with the words of `append` added to the kernel's parameters before
/// the marker (as `kexec --append` would).
///
/// `append` may not contain the marker or `--` ([`HandoverError::Reserved`]).
pub fn next_command_line_with(cmdline: &str, append: &str) -> Result<(String, u64), HandoverError> {
    let generation = generation(cmdline)?;
    let next = generation
        .checked_add(1)
        .ok_or_else(|| HandoverError::Exhausted {
            word: format!("{MARKER}={generation}"),
        })?;
    let extra = split(append).collect::<Vec<_>>();
    if let Some(word) = extra
        .iter()
        .find(|word| **word == END_OF_PARAMETERS || marker_value(word).is_some())
    {
        return Err(HandoverError::Reserved {
            word: (*word).to_string(),
        });
    }
    let mut words = split(cmdline);
    let mut out = Vec::new();
    for word in words.by_ref() {
        if word == END_OF_PARAMETERS {
            break;
        }
        if marker_value(word).is_none() {
            out.push(word.to_string());
        }
    }
    out.extend(extra.iter().map(|word| (*word).to_string()));
    out.push(format!("{MARKER}={next}"));
    let init = words.map(str::to_string).collect::<Vec<_>>();
    if !init.is_empty() || split(cmdline).any(|word| word == END_OF_PARAMETERS) {
        out.push(END_OF_PARAMETERS.to_string());
        out.extend(init);
    }
    Ok((out.join(" "), next))
}

/// Reads a command line from `path` (`/proc/cmdline`, or a copy of one).
pub fn read_command_line(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| Error::CommandLine {
        path: path.to_path_buf(),
        source,
    })
}

/// The live update generation on the command line in the file at `path`.
pub fn generation_in_file(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    generation(&read_command_line(path)?).map_err(|source| Error::Handover {
        path: PathBuf::from(path),
        source,
    })
}

/// The live update generation of the running kernel, from [`PROC_CMDLINE`]: 0 on a cold boot.
pub fn current_generation() -> Result<u64> {
    generation_in_file(PROC_CMDLINE)
}

/// The kernel's whitespace: `isspace` in the kernel's ctype (ASCII whitespace and `\v`).
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace() || c == '\x0b'
}

/// The words of a command line, split the way the kernel does: at whitespace outside double
/// quotes. Each word is returned exactly as written.
fn split(cmdline: &str) -> impl Iterator<Item = &str> {
    let mut rest = cmdline;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(is_space);
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && is_space(c)
            })
            .map_or(rest.len(), |(at, _)| at);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// The words that are kernel parameters: those before a `--`.
fn kernel_words(cmdline: &str) -> impl Iterator<Item = &str> {
    split(cmdline).take_while(|word| *word != END_OF_PARAMETERS)
}

/// The value of `word` if it is the marker parameter (`""` if it has none), as the kernel sees
/// it: a leading quote of the word, its closing quote and quotes around the value removed.
fn marker_value(word: &str) -> Option<&str> {
    let word = match word.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None => word,
    };
    let (name, value) = word.split_once('=').unwrap_or((word, ""));
    if name != MARKER {
        return None;
    }
    let value = match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None => value,
    };
    Some(value)
}

/// Parses the value of the marker `word`: a positive decimal number.
fn parse_generation(word: &str, value: &str) -> Result<u64, HandoverError> {
    if value.is_empty() {
        return Err(HandoverError::Empty {
            word: word.to_string(),
        });
    }
    match parse_decimal(value) {
        Some(0) => Err(HandoverError::Zero {
            word: word.to_string(),
        }),
        Some(generation) => Ok(generation),
        None => Err(HandoverError::NotANumber {
            word: word.to_string(),
        }),
    }
}

/// A decimal number without sign or leading zero: the form `luoctl` writes, and a form the
/// module's parameter parser (`kernel::str::parse_int`) reads the same way. Other forms the
/// module would accept (`0x10`, `0b1`, `010` as octal, `+5`) are refused rather than risk
/// reading them differently.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        text.bytes().all(|b| b.is_ascii_digit()) && !(text.len() > 1 && text.starts_with('0'));
    if text.is_empty() || !canonical {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command line as the QEMU guests of the demo have it, with virtme's base64 in backquotes.
    const VIRTME: &str = "console=ttyS0 earlyprintk=serial,ttyS0,115200 \
        virtme.exec=`c2ggLWMgJ2VjaG8gaGk9MScK` init=/usr/lib/virtme/init ro\n";

    #[test]
    fn absent_is_generation_0() {
        assert_eq!(generation(""), Ok(0));
        assert_eq!(generation("\n"), Ok(0));
        assert_eq!(generation(VIRTME), Ok(0));
        // Other parameters that only look alike.
        assert_eq!(
            generation("luo.handovers=3 xluo.handover=4 luo.handover_x=1"),
            Ok(0)
        );
    }

    #[test]
    fn present_is_its_value() {
        assert_eq!(generation("ro luo.handover=1 quiet\n"), Ok(1));
        assert_eq!(generation("luo.handover=42"), Ok(42));
        assert_eq!(generation("a\tluo.handover=7\n"), Ok(7));
        assert_eq!(
            generation("luo.handover=18446744073709551615"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn quoted_values_are_read() {
        assert_eq!(generation("luo.handover=\"6\""), Ok(6));
        assert_eq!(generation("\"luo.handover=9\""), Ok(9));
    }

    #[test]
    fn malformed_markers_are_errors_naming_the_word() {
        let cases = [
            ("luo.handover=", "Empty"),
            ("luo.handover", "Empty"),
            ("luo.handover=abc", "NotANumber"),
            ("luo.handover=-1", "NotANumber"),
            ("luo.handover=1x", "NotANumber"),
            ("luo.handover=08", "NotANumber"),
            ("luo.handover=0x10", "NotANumber"),
            ("luo.handover=0b1", "NotANumber"),
            ("luo.handover=010", "NotANumber"),
            ("luo.handover=+5", "NotANumber"),
            ("luo.handover=18446744073709551616", "NotANumber"),
            ("luo.handover=0", "Zero"),
        ];
        for (word, kind) in cases {
            let err = generation(&format!("ro {word} quiet\n")).unwrap_err();
            assert!(format!("{err:?}").starts_with(kind), "{word}: {err:?}");
            assert!(err.to_string().contains(&format!("'{word}'")), "{err}");
        }
    }

    #[test]
    fn twice_is_an_error_naming_both() {
        let err = generation("luo.handover=1 ro luo.handover=2").unwrap_err();
        assert_eq!(
            err,
            HandoverError::Twice {
                first: "luo.handover=1".into(),
                second: "luo.handover=2".into()
            }
        );
        assert!(err.to_string().contains("twice"), "{err}");
        // Even when both say the same.
        assert!(generation("luo.handover=3 luo.handover=3").is_err());
    }

    #[test]
    fn words_after_double_dash_belong_to_init() {
        assert_eq!(generation("ro -- luo.handover=3"), Ok(0));
        assert_eq!(generation("luo.handover=2 -- luo.handover=x"), Ok(2));
    }

    #[test]
    fn quoted_values_with_spaces_are_one_word() {
        assert_eq!(generation("dyndbg=\"file luo.handover=3 +p\" ro"), Ok(0));
        let (line, next) = next_command_line("a=\"x  luo.handover=3\" luo.handover=1\n").unwrap();
        assert_eq!(line, "a=\"x  luo.handover=3\" luo.handover=2");
        assert_eq!(next, 2);
    }

    #[test]
    fn next_of_a_cold_boot_is_generation_1() {
        let (line, next) = next_command_line(VIRTME).unwrap();
        assert_eq!(next, 1);
        assert_eq!(
            line,
            "console=ttyS0 earlyprintk=serial,ttyS0,115200 \
             virtme.exec=`c2ggLWMgJ2VjaG8gaGk9MScK` init=/usr/lib/virtme/init ro luo.handover=1"
        );
        assert_eq!(next_command_line(""), Ok(("luo.handover=1".into(), 1)));
    }

    #[test]
    fn next_strips_the_old_marker_and_appends_the_next() {
        let (line, next) = next_command_line("luo.handover=4 console=ttyS0 ro\n").unwrap();
        assert_eq!(
            (line.as_str(), next),
            ("console=ttyS0 ro luo.handover=5", 5)
        );
        let (line, _) = next_command_line("\"luo.handover=4\" ro").unwrap();
        assert_eq!(line, "ro luo.handover=5");
        assert_eq!(generation(&line), Ok(5));
    }

    #[test]
    fn next_keeps_the_other_words_in_order() {
        let (line, _) = next_command_line("  c  b\ta luo.handover=1 z y x\n").unwrap();
        assert_eq!(line, "c b a z y x luo.handover=2");
    }

    #[test]
    fn next_puts_the_marker_before_init_arguments() {
        let (line, next) =
            next_command_line("ro luo.handover=1 -- single luo.handover=9\n").unwrap();
        assert_eq!(line, "ro luo.handover=2 -- single luo.handover=9");
        assert_eq!(generation(&line), Ok(next));
        let (line, _) = next_command_line("ro --").unwrap();
        assert_eq!(line, "ro luo.handover=1 --");
    }

    #[test]
    fn next_refuses_a_malformed_or_last_marker() {
        assert!(matches!(
            next_command_line("luo.handover=zz"),
            Err(HandoverError::NotANumber { .. })
        ));
        assert!(matches!(
            next_command_line("luo.handover=1 luo.handover=2"),
            Err(HandoverError::Twice { .. })
        ));
        assert!(matches!(
            next_command_line("luo.handover=18446744073709551615"),
            Err(HandoverError::Exhausted { .. })
        ));
    }

    #[test]
    fn appended_words_go_before_the_marker() {
        let (line, next) =
            next_command_line_with("ro luo.handover=2\n", " quiet  loglevel=3 ").unwrap();
        assert_eq!(
            (line.as_str(), next),
            ("ro quiet loglevel=3 luo.handover=3", 3)
        );
    }

    #[test]
    fn appending_the_marker_or_double_dash_is_refused() {
        for append in ["luo.handover=7", "x --"] {
            assert!(matches!(
                next_command_line_with("ro", append),
                Err(HandoverError::Reserved { .. })
            ));
        }
    }

    #[test]
    fn a_file_is_read_and_errors_name_its_path() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("cmdline");
        std::fs::write(&path, "ro luo.handover=3\n").unwrap();
        assert_eq!(generation_in_file(&path).unwrap(), 3);
        std::fs::write(&path, "ro luo.handover=nope\n").unwrap();
        let err = generation_in_file(&path).unwrap_err();
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert!(err.to_string().contains("luo.handover=nope"), "{err}");
        let missing = dir.path().join("absent");
        let err = generation_in_file(&missing).unwrap_err();
        assert!(matches!(err, Error::CommandLine { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }
}
