//! The report every benchmark watcher sends per wake, whatever its language: one fixed-size
//! record, written with one `write(2)` to a pipe that all the watchers of a run share.
//!
//! The record is binary so that reporting costs the same in C and in Rust: no formatting, no
//! buffering, one system call. A write of at most `PIPE_BUF` bytes to a pipe is atomic, so
//! records of concurrent watchers never interleave. The layout is the one `tests/c/poll_floor.c`
//! writes (`struct record`), in the machine's byte order:
//!
//! | bytes  | field  | meaning                                                        |
//! |--------|--------|----------------------------------------------------------------|
//! | 0..8   | `ns`   | `CLOCK_MONOTONIC` once the new word was read (0 for `READY`)   |
//! | 8..12  | `id`   | the watcher's number, from its command line                    |
//! | 12..16 | `kind` | [`READY`] after the first read, [`CHANGE`] for a new word      |
//! | 16..32 | `word` | the word read, without its newline, padded with NUL bytes      |

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;

use luo_state::State;

/// The size of one record in bytes.
pub const SIZE: usize = 32;
/// The room for the word.
const WORD_CAP: usize = 16;

/// `kind` of the record sent once the watcher has read the file once (and so armed the
/// notification): from then on it sees every transition.
pub const READY: u32 = 0;
/// `kind` of the record sent for each read that shows a word different from the last.
pub const CHANGE: u32 = 1;

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// `CLOCK_MONOTONIC` nanoseconds once the new word was read (0 for [`READY`]).
    pub ns: u64,
    /// The watcher's number.
    pub id: u32,
    /// [`READY`] or [`CHANGE`].
    pub kind: u32,
    /// The state the word names, `None` for a word that names none.
    pub state: Option<State>,
}

impl Record {
    /// Decodes one record's bytes.
    pub fn decode(bytes: &[u8; SIZE]) -> Record {
        let (ns, rest) = bytes.split_at(8);
        let (id, rest) = rest.split_at(4);
        let (kind, word) = rest.split_at(4);
        let len = word.iter().position(|&b| b == 0).unwrap_or(word.len());
        Record {
            ns: u64::from_ne_bytes(ns.try_into().unwrap_or_default()),
            id: u32::from_ne_bytes(id.try_into().unwrap_or_default()),
            kind: u32::from_ne_bytes(kind.try_into().unwrap_or_default()),
            state: State::from_word(&word[..len]),
        }
    }
}

/// Encodes a record; a word longer than the room is cut (no state word is).
pub fn encode(ns: u64, id: u32, kind: u32, word: &[u8]) -> [u8; SIZE] {
    let mut out = [0u8; SIZE];
    out[..8].copy_from_slice(&ns.to_ne_bytes());
    out[8..12].copy_from_slice(&id.to_ne_bytes());
    out[12..16].copy_from_slice(&kind.to_ne_bytes());
    let len = word.len().min(WORD_CAP);
    out[16..16 + len].copy_from_slice(&word[..len]);
    out
}

/// The Rust watchers' end of the pipe: their standard output, written without std's line
/// buffer (which would split a record at a byte 0x0a), one `write(2)` per record as the C
/// floor does.
pub struct Reporter {
    out: File,
    id: u32,
}

impl Reporter {
    /// Reports on a duplicate of standard output as watcher `id`.
    pub fn stdout(id: u32) -> io::Result<Reporter> {
        let out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        Ok(Reporter { out, id })
    }

    /// Sends one record. A pipe takes a record whole or not at all (it is below `PIPE_BUF`),
    /// so a short write cannot happen.
    pub fn send(&mut self, ns: u64, kind: u32, word: &[u8]) -> io::Result<()> {
        let n = self.out.write(&encode(ns, self.id, kind, word))?;
        if n == SIZE {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short write of a record: {n} bytes"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let bytes = encode(123_456_789, 17, CHANGE, b"prepared");
        assert_eq!(
            Record::decode(&bytes),
            Record {
                ns: 123_456_789,
                id: 17,
                kind: CHANGE,
                state: Some(State::Prepared)
            }
        );
        let odd = Record::decode(&encode(0, 0, READY, b"0123456789abcdefXYZ"));
        assert_eq!((odd.kind, odd.state), (READY, None));
    }
}
