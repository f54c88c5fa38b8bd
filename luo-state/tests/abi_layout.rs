//! Layout and trait facts of the ABI types, checked at compile time.

use luo_state::ioctl::{GetStateArg, SetEventArg};
use luo_state::{Event, State, StateCell};
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

#[test]
fn request_structs_carry_their_own_size() {
    assert_eq!(GetStateArg::request().size, 8);
    assert_eq!(
        SetEventArg::new(Event::Cancel),
        SetEventArg { size: 8, event: 3 }
    );
}
