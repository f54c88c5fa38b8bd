//! `parse` inverts `show`, and no input makes the parser panic.

use luo_state::State;
use luo_sysfs_abi::{parse_state, show, SHOW_MAX_LEN};
use proptest::prelude::*;

#[test]
fn parse_inverts_show_for_every_observable_state() {
    for state in State::OBSERVABLE {
        let mut page = [0u8; 4096];
        let len = show(state, &mut page).expect("a page holds any state");
        assert_eq!(parse_state(&page[..len]), Ok(state));
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_only_exact_words_parse(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(state) = parse_state(&bytes) {
            let mut buf = [0u8; SHOW_MAX_LEN];
            let len = show(state, &mut buf).unwrap();
            prop_assert_eq!(&buf[..len], &bytes[..]);
        }
    }

    #[test]
    fn a_word_with_any_change_is_refused(index in 0usize..4, pos in 0usize..9, byte in any::<u8>()) {
        let state = State::OBSERVABLE[index];
        let mut bytes = format!("{}\n", state.word()).into_bytes();
        let pos = pos % bytes.len();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        prop_assert!(parse_state(&bytes).is_err() || parse_state(&bytes) != Ok(state));
    }
}
