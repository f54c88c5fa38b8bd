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

use core::fmt;
use core::mem::{offset_of, size_of};

use crate::State;

/// The name of the record's KHO subtree. Mainline's orchestrator uses "LUO"; ours must differ.
pub const KHO_SUBTREE: &core::ffi::CStr = c"luo-v3-state";

/// The record's magic: "LUOSTATE" read as a little-endian `u64`.
pub const RECORD_MAGIC: u64 = u64::from_le_bytes(*b"LUOSTATE");

/// The version of the layout below. A decoder refuses versions it does not know rather than
/// guess at their fields.
pub const RECORD_VERSION: u32 = 1;

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
    /// Zero: explicit padding, so no byte of the record is left uninitialised.
    pub reserved: u32,
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
const _: () = assert!(offset_of!(Record, reserved) == 20);
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
            reserved: 0,
            generation,
        }
    }

    /// The record's bytes, as they lie in memory (little-endian: x86-64 only writes them).
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut out = [0u8; RECORD_SIZE];
        out[0..8].copy_from_slice(&self.magic.to_le_bytes());
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.size.to_le_bytes());
        out[16..20].copy_from_slice(&self.state.to_le_bytes());
        out[20..24].copy_from_slice(&self.reserved.to_le_bytes());
        out[24..32].copy_from_slice(&self.generation.to_le_bytes());
        out
    }
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
    /// The reserved word is not zero: the writer was not this version's.
    ReservedNotZero(u32),
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
    if version != RECORD_VERSION {
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
    let reserved = u32_at(bytes, offset_of!(Record, reserved));
    if reserved != 0 {
        return Err(RecordError::ReservedNotZero(reserved));
    }
    Ok(Handover {
        state,
        generation: u64_at(bytes, offset_of!(Record, generation)),
    })
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

    #[test]
    fn a_nonzero_reserved_word_is_refused() {
        let mut record = Record::new(State::Frozen, 0);
        record.reserved = 1;
        assert_eq!(
            decode(&record.to_bytes()),
            Err(RecordError::ReservedNotZero(1))
        );
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
