//! The strict parsers for what userspace reads from the attributes.

use core::fmt;

use crate::{Flavour, State};

/// What was read, kept for an error message: up to [`Content::CAPACITY`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    bytes: heapless::Vec<u8, { Content::CAPACITY }>,
    truncated: bool,
}

impl Content {
    /// How many bytes an error quotes; a longer read is cut and marked as such.
    pub const CAPACITY: usize = 32;

    fn new(read: &[u8]) -> Self {
        let kept = &read[..read.len().min(Self::CAPACITY)];
        let mut bytes = heapless::Vec::new();
        // Cannot fail: `kept` is at most CAPACITY bytes long.
        let _ = bytes.extend_from_slice(kept);
        Content {
            bytes,
            truncated: kept.len() < read.len(),
        }
    }

    /// The bytes quoted (the start of the read when it was longer than the capacity).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the read was longer than what is quoted.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for Content {
    /// The bytes with anything unprintable escaped (`\n`, `\x00`), and `...` when cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.bytes {
            write!(f, "{}", byte.escape_ascii())?;
        }
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Why the bytes read from an attribute are not what its `show` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing was read.
    Empty,
    /// The content does not end in a newline, so it is not what `show` writes (a short read or
    /// a file that is not the attribute).
    MissingNewline(Content),
    /// A line that is not one of the four words: a newer kernel's state, or garbage. Quotes
    /// the line without its newline.
    UnknownState(Content),
    /// A line that is not a decimal number without leading zeros that fits in 64 bits.
    /// Quotes the line without its newline.
    BadGeneration(Content),
    /// A line that is not one of the flavours' words. Quotes the line without its newline.
    UnknownFlavour(Content),
    /// A `transitions` line that is not a decimal number without leading zeros that fits in
    /// 64 bits. Quotes the line without its newline.
    BadTransitions(Content),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("nothing was read (expected one line)"),
            ParseError::MissingNewline(content) => {
                write!(f, "state '{content}' does not end in a newline")
            }
            ParseError::UnknownState(content) => write!(f, "unknown state '{content}'"),
            ParseError::UnknownFlavour(content) => write!(f, "unknown flavour '{content}'"),
            ParseError::BadGeneration(content) => write!(
                f,
                "generation '{content}' is not a decimal number (expected digits and a newline)"
            ),
            ParseError::BadTransitions(content) => write!(
                f,
                "transition count '{content}' is not a decimal number (expected digits and a \
                 newline)"
            ),
        }
    }
}

/// Parses exactly what `show` writes: one of the four documented words and one newline.
///
/// Anything else is an error that quotes what was read, so a word a future kernel adds is
/// reported as unknown, never mistaken for another state. `undefined` is refused too: an
/// initialised orchestrator never shows it.
pub fn parse_state(read: &[u8]) -> Result<State, ParseError> {
    let Some((last, line)) = read.split_last() else {
        return Err(ParseError::Empty);
    };
    if *last != b'\n' {
        return Err(ParseError::MissingNewline(Content::new(read)));
    }
    State::from_word(line)
        .filter(|state| State::OBSERVABLE.contains(state))
        .ok_or_else(|| ParseError::UnknownState(Content::new(line)))
}

/// Parses exactly what `show_flavour` writes: one of the flavours' words and one newline.
pub fn parse_flavour(read: &[u8]) -> Result<Flavour, ParseError> {
    let Some((last, line)) = read.split_last() else {
        return Err(ParseError::Empty);
    };
    if *last != b'\n' {
        return Err(ParseError::MissingNewline(Content::new(read)));
    }
    core::str::from_utf8(line)
        .ok()
        .and_then(Flavour::from_word)
        .ok_or_else(|| ParseError::UnknownFlavour(Content::new(line)))
}

/// Parses exactly what `show_generation` writes: a decimal `u64` without sign, spaces or
/// leading zeros, and one newline.
pub fn parse_generation(read: &[u8]) -> Result<u64, ParseError> {
    parse_decimal(read, ParseError::BadGeneration)
}

/// Parses exactly what `show_transitions` writes: a decimal `u64` without sign, spaces or
/// leading zeros, and one newline.
pub fn parse_transitions(read: &[u8]) -> Result<u64, ParseError> {
    parse_decimal(read, ParseError::BadTransitions)
}

/// A decimal `u64` and one newline; `bad` makes the error of a line that is not one.
fn parse_decimal(read: &[u8], bad: fn(Content) -> ParseError) -> Result<u64, ParseError> {
    let Some((last, line)) = read.split_last() else {
        return Err(ParseError::Empty);
    };
    if *last != b'\n' {
        return Err(ParseError::MissingNewline(Content::new(read)));
    }
    let bad = || bad(Content::new(line));
    if line.is_empty() || (line.len() > 1 && line[0] == b'0') {
        return Err(bad());
    }
    line.iter().try_fold(0u64, |acc, &byte| {
        if !byte.is_ascii_digit() {
            return Err(bad());
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(byte - b'0')))
            .ok_or_else(bad)
    })
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    #[test]
    fn each_documented_word_parses() {
        assert_eq!(parse_state(b"normal\n"), Ok(State::Normal));
        assert_eq!(parse_state(b"prepared\n"), Ok(State::Prepared));
        assert_eq!(parse_state(b"frozen\n"), Ok(State::Frozen));
        assert_eq!(parse_state(b"updated\n"), Ok(State::Updated));
    }

    #[test]
    fn empty_is_its_own_error() {
        assert_eq!(parse_state(b""), Err(ParseError::Empty));
    }

    #[test]
    fn a_word_without_newline_is_refused() {
        let err = parse_state(b"normal").unwrap_err();
        assert_eq!(err.to_string(), "state 'normal' does not end in a newline");
    }

    #[test]
    fn a_new_word_is_reported_as_unknown_with_its_text() {
        let err = parse_state(b"xyz\n").unwrap_err();
        assert_eq!(err.to_string(), "unknown state 'xyz'");
    }

    #[test]
    fn undefined_is_not_a_documented_state() {
        let err = parse_state(b"undefined\n").unwrap_err();
        assert_eq!(err.to_string(), "unknown state 'undefined'");
    }

    #[test]
    fn extra_whitespace_is_refused() {
        for bad in [
            &b"normal\n\n"[..],
            b" normal\n",
            b"normal \n",
            b"normal\r\n",
        ] {
            assert!(
                matches!(parse_state(bad), Err(ParseError::UnknownState(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unprintable_bytes_are_escaped_and_long_reads_cut() {
        let err = parse_state(b"\x00\xffab\n").unwrap_err();
        assert_eq!(err.to_string(), "unknown state '\\x00\\xffab'");
        let long = [b'a'; 40];
        let ParseError::MissingNewline(content) = parse_state(&long).unwrap_err() else {
            panic!("expected MissingNewline");
        };
        assert!(content.is_truncated());
        assert_eq!(content.bytes().len(), Content::CAPACITY);
        assert!(content.to_string().ends_with("a..."));
    }

    #[test]
    fn generations_parse_in_decimal() {
        assert_eq!(parse_generation(b"0\n"), Ok(0));
        assert_eq!(parse_generation(b"2\n"), Ok(2));
        assert_eq!(parse_generation(b"18446744073709551615\n"), Ok(u64::MAX));
    }

    #[test]
    fn transition_counts_parse_in_decimal_and_nothing_else_does() {
        assert_eq!(parse_transitions(b"0\n"), Ok(0));
        assert_eq!(parse_transitions(b"42\n"), Ok(42));
        for bad in [
            &b"\n"[..],
            b"01\n",
            b"-1\n",
            b"4 2\n",
            b"18446744073709551616\n",
        ] {
            assert!(
                matches!(parse_transitions(bad), Err(ParseError::BadTransitions(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_transitions(b"x\n").unwrap_err().to_string(),
            "transition count 'x' is not a decimal number (expected digits and a newline)"
        );
    }

    #[test]
    fn anything_but_plain_decimal_is_not_a_generation() {
        for bad in [
            &b"\n"[..],
            b"01\n",
            b"+1\n",
            b"-1\n",
            b" 1\n",
            b"1 \n",
            b"0x1\n",
            b"18446744073709551616\n",
            b"1\n\n",
        ] {
            assert!(
                matches!(parse_generation(bad), Err(ParseError::BadGeneration(_))),
                "{bad:?}"
            );
        }
        assert_eq!(parse_generation(b""), Err(ParseError::Empty));
        assert!(matches!(
            parse_generation(b"1"),
            Err(ParseError::MissingNewline(_))
        ));
        assert_eq!(
            parse_generation(b"x\n").unwrap_err().to_string(),
            "generation 'x' is not a decimal number (expected digits and a newline)"
        );
    }
}
