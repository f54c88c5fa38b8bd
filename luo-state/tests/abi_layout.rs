//! Layout and trait facts of the ABI types, checked at compile time.

use luo_state::ioctl::{GetStateArg, SetEventArg};
use luo_state::record::{KHO_SUBTREE, RECORD_SIZE};
use luo_state::{Event, Record, State, StateCell};
use static_assertions::{assert_eq_align, assert_eq_size, assert_impl_all};

assert_eq_size!(GetStateArg, [u32; 2]);
assert_eq_size!(SetEventArg, [u32; 2]);
assert_eq_align!(GetStateArg, u32);
assert_eq_align!(SetEventArg, u32);
assert_eq_size!(State, u32);
assert_eq_size!(Event, u32);
// The kernel shares one cell between the setter and every sysfs reader.
assert_impl_all!(StateCell: Send, Sync);
assert_impl_all!(State: Copy, Send, Sync);
// The handover record crosses kernels: 32 bytes, 8-aligned, the same in every build.
assert_eq_size!(Record, [u64; 4]);
assert_eq_align!(Record, u64);

#[test]
fn request_structs_carry_their_own_size() {
    assert_eq!(GetStateArg::request().size, 8);
    assert_eq!(
        SetEventArg::new(Event::Cancel),
        SetEventArg { size: 8, event: 3 }
    );
}

#[test]
fn the_handover_record_is_laid_out_field_by_field() {
    use std::mem::offset_of;
    assert_eq!(RECORD_SIZE, 32);
    let offsets = [
        offset_of!(Record, magic),
        offset_of!(Record, version),
        offset_of!(Record, size),
        offset_of!(Record, state),
        offset_of!(Record, check),
        offset_of!(Record, generation),
    ];
    assert_eq!(offsets, [0, 8, 12, 16, 20, 24]);
    let bytes = Record::new(State::Frozen, 1).to_bytes();
    assert_eq!(&bytes[..8], b"LUOSTATE");
    assert_eq!(
        bytes[12..16],
        32u32.to_le_bytes(),
        "the record states its own size"
    );
    assert_eq!(bytes[16..20], 3u32.to_le_bytes(), "frozen is uapi state 3");
    assert_eq!(
        bytes[24..32],
        2u64.to_le_bytes(),
        "a frozen record counts the next jump"
    );
}

#[test]
fn the_kho_subtree_is_not_mainlines_name() {
    assert_ne!(KHO_SUBTREE.to_bytes(), b"LUO");
}
