//! The handover record: what one kernel leaves in kexec handover (KHO) memory for the next, and
//! the pure rules that write it and read it back.
//!
//! The module keeps one [`Record`] in preserved memory for its whole life and rewrites it under
//! the transition lock on every change of state, so at the kexec jump it says the state at the
//! jump. The next kernel decodes it with [`decode`] and decides its boot state with
//! [`Handover::arrival`]: only a record that says `frozen` is a live update. A CANCEL that wins
//! the lock before the jump rewrites the record to `normal`, so the next kernel boots `normal`
//! by construction; no image has to be unloaded for that.
//!
//! The bytes are read in a different kernel, possibly one built from another version of this
//! file, so the layout is fixed (`#[repr(C)]`, explicit padding, asserted offsets) and the
//! decoder trusts nothing: it checks the magic, the version, the record's own size and the
//! state, and names what it refused.
//!
//! The record is also visible while it changes: with `KEXEC_HANDOVER_DEBUGFS`, debugfs
//! `kho/out/sub_fdts/luo-v3-state` shows the live bytes, and a reader there copies them while
//! the writer may be storing. Version 2 makes every torn copy detectable, whatever the order in
//! which a reader copies the bytes. The writer stores the record as four aligned 8-byte words
//! ([`Record::to_words`], the same little-endian bytes [`Record::to_bytes`] encodes, so there is
//! one byte order for writer and reader). Only two words ever change after the record is first
//! published: the one holding `state` and `check`, and `generation`. `check` is a hash of
//! `state` and `generation` ([`check`]), so a copy that pairs the state of one write with the
//! generation of another, or mixes the bytes of two writes inside a word, fails the check
//! unless the mix is one of the two records (a hash collision aside: 32 bits). A reader needs
//! no retry protocol; the decoder refuses the torn copy (`check ... does not match`).

use core::fmt;
use core::mem::{offset_of, size_of};

use crate::State;

/// The name of the record's KHO subtree. Mainline's orchestrator uses "LUO"; ours must differ.
pub const KHO_SUBTREE: &core::ffi::CStr = c"luo-v3-state";

/// The record's magic: "LUOSTATE" read as a little-endian `u64`.
pub const RECORD_MAGIC: u64 = u64::from_le_bytes(*b"LUOSTATE");

/// The version of the layout below. A decoder refuses versions it does not know rather than
/// guess at their fields.
pub const RECORD_VERSION: u32 = 2;

/// The previous version, which a kernel running an older luo leaves: the same layout with a
/// reserved zero word where version 2 has `check`. Still accepted, so a live update from such
/// a kernel is recognised.
pub const RECORD_VERSION_1: u32 = 1;

/// The handover record, exactly as it lies in preserved memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    /// [`RECORD_MAGIC`]: tells our record from stale or foreign bytes.
    pub magic: u64,
    /// [`RECORD_VERSION`] of the kernel that wrote it.
    pub version: u32,
    /// `size_of::<Record>()` in the kernel that wrote it: a later version may append fields,
    /// and a reader must know how many bytes the writer meant.
    pub size: u32,
    /// The uapi number of the orchestrator's state when the record was last written, which is
    /// the state at the jump: the writer rewrites it on every change, under the same lock.
    pub state: u32,
    /// [`check`] of `state` and `generation`: tells a consistent record from a torn copy of a
    /// record that was being rewritten. (Zero, reserved, in version 1.)
    pub check: u32,
    /// The live-update generation the next kernel takes over: the count of live updates since
    /// a cold boot, already counting this one when `state` is `frozen`.
    pub generation: u64,
}

// The record crosses kernels: its layout is ABI. A change here needs a new version.
const _: () = assert!(size_of::<Record>() == 32);
const _: () = assert!(core::mem::align_of::<Record>() == 8);
const _: () = assert!(offset_of!(Record, magic) == 0);
const _: () = assert!(offset_of!(Record, version) == 8);
const _: () = assert!(offset_of!(Record, size) == 12);
const _: () = assert!(offset_of!(Record, state) == 16);
const _: () = assert!(offset_of!(Record, check) == 20);
const _: () = assert!(offset_of!(Record, generation) == 24);

/// The size of a version-1 record, as the record states it.
pub const RECORD_SIZE: usize = size_of::<Record>();

impl Record {
    /// The record a kernel in `state`, at live-update `generation`, leaves for the next one.
    ///
    /// In `frozen` the jump that follows is a live update, so the next kernel is one generation
    /// further; in any other state the next boot is not a live update and the count carries
    /// over unchanged (a plain kexec is not a cold boot).
    pub const fn new(state: State, generation: u64) -> Self {
        let generation = match state {
            State::Frozen => generation.saturating_add(1),
            _ => generation,
        };
        Record {
            magic: RECORD_MAGIC,
            version: RECORD_VERSION,
            size: RECORD_SIZE as u32,
            state: state.as_u32(),
            check: check(state.as_u32(), generation),
            generation,
        }
    }

    /// The record as the four aligned 8-byte words a writer stores, each the native-endian
    /// reading of 8 bytes of [`Record::to_bytes`]: storing them lays those exact bytes in
    /// memory, in any byte order.
    pub fn to_words(&self) -> [u64; RECORD_SIZE / 8] {
        let b = self.to_bytes();
        let mut words = [0u64; RECORD_SIZE / 8];
        let mut i = 0;
        while i < words.len() {
            let at = 8 * i;
            words[i] = u64::from_ne_bytes([
                b[at],
                b[at + 1],
                b[at + 2],
                b[at + 3],
                b[at + 4],
                b[at + 5],
                b[at + 6],
                b[at + 7],
            ]);
            i += 1;
        }
        words
    }

    /// The record's bytes, as they lie in memory (little-endian: x86-64 only writes them).
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut out = [0u8; RECORD_SIZE];
        out[0..8].copy_from_slice(&self.magic.to_le_bytes());
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.size.to_le_bytes());
        out[16..20].copy_from_slice(&self.state.to_le_bytes());
        out[20..24].copy_from_slice(&self.check.to_le_bytes());
        out[24..32].copy_from_slice(&self.generation.to_le_bytes());
        out
    }
}

/// The `check` word of a version-2 record: FNV-1a (32 bits) of the little-endian bytes of
/// `state` and then `generation`. Any hash whose value depends on every byte would do; this one
/// is short and `const`.
pub const fn check(state: u32, generation: u64) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let state = state.to_le_bytes();
    let generation = generation.to_le_bytes();
    let mut hash = OFFSET;
    let mut i = 0;
    while i < 12 {
        let byte = if i < 4 { state[i] } else { generation[i - 4] };
        hash = (hash ^ byte as u32).wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// What a valid record tells the next kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The state at the jump.
    pub state: State,
    /// The generation the record hands over.
    pub generation: u64,
}

/// Why a record was refused. Each names what it found, for the one log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The KHO blob is shorter than the fixed head of a record.
    Truncated {
        /// The blob's size in bytes.
        len: usize,
    },
    /// The magic is not [`RECORD_MAGIC`]: not our record.
    BadMagic(u64),
    /// A version this kernel does not know.
    UnknownVersion(u32),
    /// The record's own size is shorter than its version needs, or longer than the blob.
    BadSize {
        /// The size the record states.
        stated: u32,
        /// The blob's size in bytes.
        len: usize,
    },
    /// The state is not one a kernel can be in at a jump (unknown number, or `undefined`).
    ImpossibleState(u32),
    /// Version 1's reserved word is not zero: the writer was not that version's.
    ReservedNotZero(u32),
    /// Version 2's check word does not match the state and generation: a copy torn while the
    /// record was rewritten, or damaged bytes.
    BadCheck {
        /// The check word found.
        found: u32,
        /// The check of the state and generation found.
        expected: u32,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordError::Truncated { len } => write!(
                f,
                "record truncated: {len} bytes, a record needs {RECORD_SIZE}"
            ),
            RecordError::BadMagic(magic) => write!(f, "bad magic {magic:#018x}"),
            RecordError::UnknownVersion(version) => write!(
                f,
                "version {version} unknown (this kernel reads version {RECORD_VERSION})"
            ),
            RecordError::BadSize { stated, len } => write!(
                f,
                "record states size {stated}, needs {RECORD_SIZE} within a {len}-byte blob"
            ),
            RecordError::ImpossibleState(state) => write!(f, "impossible state {state}"),
            RecordError::ReservedNotZero(word) => write!(f, "reserved word {word:#x} not zero"),
            RecordError::BadCheck { found, expected } => write!(
                f,
                "check {found:#010x} does not match the state and generation ({expected:#010x}): \
                 torn or damaged"
            ),
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes the KHO blob `bytes`, refusing anything that is not a well-formed record.
///
/// The checks run from the outside in (length, magic, version, stated size, fields), so the
/// reason names the first thing that is wrong.
pub fn decode(bytes: &[u8]) -> Result<Handover, RecordError> {
    if bytes.len() < RECORD_SIZE {
        return Err(RecordError::Truncated { len: bytes.len() });
    }
    let magic = u64_at(bytes, offset_of!(Record, magic));
    if magic != RECORD_MAGIC {
        return Err(RecordError::BadMagic(magic));
    }
    let version = u32_at(bytes, offset_of!(Record, version));
    if version != RECORD_VERSION && version != RECORD_VERSION_1 {
        return Err(RecordError::UnknownVersion(version));
    }
    let stated = u32_at(bytes, offset_of!(Record, size));
    if (stated as usize) < RECORD_SIZE || stated as usize > bytes.len() {
        return Err(RecordError::BadSize {
            stated,
            len: bytes.len(),
        });
    }
    let raw_state = u32_at(bytes, offset_of!(Record, state));
    let state = match State::from_u32(raw_state) {
        Some(State::Undefined) | None => return Err(RecordError::ImpossibleState(raw_state)),
        Some(state) => state,
    };
    let found = u32_at(bytes, offset_of!(Record, check));
    let generation = u64_at(bytes, offset_of!(Record, generation));
    if version == RECORD_VERSION_1 {
        if found != 0 {
            return Err(RecordError::ReservedNotZero(found));
        }
    } else {
        let expected = check(raw_state, generation);
        if found != expected {
            return Err(RecordError::BadCheck { found, expected });
        }
    }
    Ok(Handover { state, generation })
}

/// How a kernel comes up, decided from what it found in KHO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The boot state: `updated` after a live update, `normal` otherwise.
    pub state: State,
    /// This kernel's live-update generation.
    pub generation: u64,
}

impl Handover {
    /// The boot a valid record gives: a live update (`updated`) only when the previous kernel
    /// was `frozen` at the jump; otherwise `normal`, with the generation carried over.
    pub const fn arrival(self) -> Arrival {
        let state = match self.state {
            State::Frozen => State::Updated,
            _ => State::Normal,
        };
        Arrival {
            state,
            generation: self.generation,
        }
    }
}

impl Arrival {
    /// A cold boot, or a boot whose record could not be trusted: `normal`, generation 0.
    pub const COLD: Arrival = Arrival {
        state: State::Normal,
        generation: 0,
    };
}

/// Ways the test hook damages the outgoing record, to check that the next kernel refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Damage {
    /// Overwrite the magic.
    Magic = 0,
    /// Set a version no kernel knows.
    Version = 1,
    /// State a size shorter than a record.
    Size = 2,
    /// Store a state number that names no state.
    State = 3,
}

impl Damage {
    /// Every kind of damage, in number order.
    pub const ALL: [Damage; 4] = [Damage::Magic, Damage::Version, Damage::Size, Damage::State];

    /// The damage numbered `raw` (the test ioctl's argument), if any.
    pub const fn from_u32(raw: u32) -> Option<Damage> {
        match raw {
            0 => Some(Damage::Magic),
            1 => Some(Damage::Version),
            2 => Some(Damage::Size),
            3 => Some(Damage::State),
            _ => None,
        }
    }

    /// `record` with this damage applied.
    pub const fn apply(self, record: Record) -> Record {
        let mut damaged = record;
        match self {
            Damage::Magic => damaged.magic = !RECORD_MAGIC,
            Damage::Version => damaged.version = RECORD_VERSION + 1,
            Damage::Size => damaged.size = RECORD_SIZE as u32 - 1,
            Damage::State => damaged.state = u32::MAX,
        }
        damaged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_in_every_observable_state() {
        for state in State::OBSERVABLE {
            let record = Record::new(state, 7);
            let back = decode(&record.to_bytes()).unwrap();
            assert_eq!(back.state, state);
            assert_eq!(back.generation, record.generation);
        }
    }

    #[test]
    fn only_a_frozen_record_counts_one_more_generation() {
        assert_eq!(Record::new(State::Frozen, 3).generation, 4);
        for state in [State::Normal, State::Prepared, State::Updated] {
            assert_eq!(Record::new(state, 3).generation, 3, "{state}");
        }
        assert_eq!(Record::new(State::Frozen, u64::MAX).generation, u64::MAX);
    }

    #[test]
    fn a_frozen_record_arrives_updated_with_its_generation() {
        let arrival = decode(&Record::new(State::Frozen, 1).to_bytes())
            .unwrap()
            .arrival();
        assert_eq!(
            arrival,
            Arrival {
                state: State::Updated,
                generation: 2
            }
        );
    }

    #[test]
    fn a_record_that_is_not_frozen_arrives_normal_and_keeps_the_count() {
        for state in [State::Normal, State::Prepared, State::Updated] {
            let arrival = decode(&Record::new(state, 5).to_bytes()).unwrap().arrival();
            assert_eq!(
                arrival,
                Arrival {
                    state: State::Normal,
                    generation: 5
                },
                "{state}"
            );
        }
    }

    #[test]
    fn bytes_match_the_in_memory_layout() {
        let record = Record::new(State::Frozen, 0x0102_0304_0506_0708);
        // SAFETY: `Record` is `repr(C)` with no padding (asserted above), so all its bytes are
        // initialised and reading them as a byte array is sound.
        let raw: [u8; RECORD_SIZE] = unsafe { core::mem::transmute(record) };
        assert_eq!(raw, record.to_bytes());
        assert_eq!(&raw[0..8], b"LUOSTATE");
    }

    #[test]
    fn a_short_blob_is_truncated() {
        let bytes = Record::new(State::Frozen, 0).to_bytes();
        assert_eq!(
            decode(&bytes[..RECORD_SIZE - 1]),
            Err(RecordError::Truncated {
                len: RECORD_SIZE - 1
            })
        );
        assert_eq!(decode(&[]), Err(RecordError::Truncated { len: 0 }));
    }

    #[test]
    fn each_damage_is_refused_with_its_reason() {
        let record = Record::new(State::Frozen, 0);
        for damage in Damage::ALL {
            let got = decode(&damage.apply(record).to_bytes());
            let expected = match damage {
                Damage::Magic => RecordError::BadMagic(!RECORD_MAGIC),
                Damage::Version => RecordError::UnknownVersion(RECORD_VERSION + 1),
                Damage::Size => RecordError::BadSize {
                    stated: RECORD_SIZE as u32 - 1,
                    len: RECORD_SIZE,
                },
                Damage::State => RecordError::ImpossibleState(u32::MAX),
            };
            assert_eq!(got, Err(expected), "{damage:?}");
        }
    }

    #[test]
    fn undefined_is_an_impossible_state_at_a_jump() {
        let mut record = Record::new(State::Frozen, 0);
        record.state = State::Undefined.as_u32();
        assert_eq!(
            decode(&record.to_bytes()),
            Err(RecordError::ImpossibleState(0))
        );
    }

    #[test]
    fn a_stated_size_beyond_the_blob_is_refused() {
        let mut record = Record::new(State::Frozen, 0);
        record.size = RECORD_SIZE as u32 + 8;
        assert_eq!(
            decode(&record.to_bytes()),
            Err(RecordError::BadSize {
                stated: RECORD_SIZE as u32 + 8,
                len: RECORD_SIZE
            })
        );
    }

    #[test]
    fn a_longer_blob_from_a_larger_record_is_read() {
        // A later writer may append fields and state a larger size; version 1 reads its part.
        let mut record = Record::new(State::Frozen, 4);
        record.size = RECORD_SIZE as u32 + 8;
        let mut blob = [0u8; RECORD_SIZE + 8];
        blob[..RECORD_SIZE].copy_from_slice(&record.to_bytes());
        assert_eq!(decode(&blob).unwrap().generation, 5);
    }

    /// A version-1 record, as a kernel running an older luo writes it.
    fn version_1(state: State, generation: u64) -> Record {
        Record {
            version: RECORD_VERSION_1,
            check: 0,
            ..Record::new(state, generation)
        }
    }

    #[test]
    fn a_version_1_record_is_still_read() {
        let back = decode(&version_1(State::Frozen, 2).to_bytes()).unwrap();
        assert_eq!(back.state, State::Frozen);
        assert_eq!(back.generation, 3);
    }

    #[test]
    fn a_nonzero_reserved_word_of_version_1_is_refused() {
        let mut record = version_1(State::Frozen, 0);
        record.check = 1;
        assert_eq!(
            decode(&record.to_bytes()),
            Err(RecordError::ReservedNotZero(1))
        );
    }

    #[test]
    fn a_check_that_does_not_match_is_refused() {
        let mut record = Record::new(State::Frozen, 0);
        record.generation += 1;
        assert!(matches!(
            decode(&record.to_bytes()),
            Err(RecordError::BadCheck { .. })
        ));
    }

    #[test]
    fn words_lay_the_encoded_bytes_in_memory() {
        let record = Record::new(State::Prepared, 0x0102_0304_0506_0708);
        let words = record.to_words();
        let mut laid = [0u8; RECORD_SIZE];
        for (chunk, word) in laid.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        assert_eq!(laid, record.to_bytes());
    }

    /// Every copy a reader can make while the writer replaces `old` with `new`, byte by byte
    /// in any order: each byte from one of the two records.
    fn torn_copies(old: Record, new: Record) -> impl Iterator<Item = [u8; RECORD_SIZE]> {
        let (old, new) = (old.to_bytes(), new.to_bytes());
        let differ: std::vec::Vec<usize> = (0..RECORD_SIZE).filter(|&i| old[i] != new[i]).collect();
        assert!(differ.len() <= 20, "too many differing bytes to enumerate");
        (0u32..1 << differ.len()).map(move |mask| {
            let mut copy = old;
            for (bit, &at) in differ.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    copy[at] = new[at];
                }
            }
            copy
        })
    }

    #[test]
    fn a_copy_torn_by_any_transition_is_refused_or_one_of_the_two_records() {
        use crate::{next_state, Event};
        for generation in [0, 0xff, 0xffff_ffff, u64::MAX - 1] {
            for from in State::OBSERVABLE {
                for event in Event::ALL {
                    let Ok(to) = next_state(from, event) else {
                        continue;
                    };
                    let (old, new) = (Record::new(from, generation), Record::new(to, generation));
                    let valid = [decode(&old.to_bytes()), decode(&new.to_bytes())];
                    for copy in torn_copies(old, new) {
                        let got = decode(&copy);
                        assert!(
                            got.is_err() || valid.contains(&got),
                            "{from} -> {to} at generation {generation}: a torn copy decodes \
                             to {got:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn damage_numbers_round_trip() {
        for damage in Damage::ALL {
            assert_eq!(Damage::from_u32(damage as u32), Some(damage));
        }
        assert_eq!(Damage::from_u32(4), None);
    }

    #[test]
    fn every_refusal_names_what_it_found() {
        use std::string::ToString;
        assert!(RecordError::BadMagic(0x1234).to_string().contains("0x"));
        assert!(RecordError::UnknownVersion(9)
            .to_string()
            .contains("version 9"));
        assert!(RecordError::ImpossibleState(77).to_string().contains("77"));
        assert!(RecordError::Truncated { len: 3 }
            .to_string()
            .contains("3 bytes"));
    }
}
