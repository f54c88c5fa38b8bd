//! The exact bytes the attributes show: for `state` the state's word and one newline, for
//! `generation` and `transitions` the number in decimal and one newline, for `flavour` its word
//! and one newline.

use crate::{Flavour, State};

/// The length of the longest output of [`show`] (`"undefined\n"`).
pub const SHOW_MAX_LEN: usize = longest_state_word() + 1;

/// The length of the longest word of a state.
const fn longest_state_word() -> usize {
    let mut longest = 0;
    let mut i = 0;
    while i < State::ALL.len() {
        let len = State::ALL[i].word().len();
        if len > longest {
            longest = len;
        }
        i += 1;
    }
    longest
}

/// The length of the longest word of a flavour.
const fn longest_flavour_word() -> usize {
    let mut longest = 0;
    let mut i = 0;
    while i < Flavour::ALL.len() {
        let len = Flavour::ALL[i].word().len();
        if len > longest {
            longest = len;
        }
        i += 1;
    }
    longest
}

/// Writes what reading the `state` attribute returns for `state` at the start of `buf` (the
/// kernel's page) and returns its length, or `None` if `buf` is shorter than that.
pub fn show(state: State, buf: &mut [u8]) -> Option<usize> {
    show_word(state.word(), buf)
}

/// The length of the longest output of [`show_flavour`] (`"standalone\n"`).
pub const FLAVOUR_SHOW_MAX_LEN: usize = longest_flavour_word() + 1;

/// Writes what reading the `flavour` attribute returns for `flavour` at the start of `buf`
/// and returns its length, or `None` if `buf` is shorter than that.
pub fn show_flavour(flavour: Flavour, buf: &mut [u8]) -> Option<usize> {
    show_word(flavour.word(), buf)
}

/// `word` and a newline at the start of `buf`.
fn show_word(word: &str, buf: &mut [u8]) -> Option<usize> {
    let word = word.as_bytes();
    let len = word.len() + 1;
    let out = buf.get_mut(..len)?;
    let (text, newline) = out.split_at_mut(word.len());
    text.copy_from_slice(word);
    newline.copy_from_slice(b"\n");
    Some(len)
}

/// The length of the longest output of [`show_generation`] (`u64::MAX` and a newline).
pub const GENERATION_SHOW_MAX_LEN: usize = 21;

/// Writes what reading the `generation` attribute returns for `generation` (decimal, no leading
/// zeros, one newline) at the start of `buf` and returns its length, or `None` if `buf` is
/// shorter than that.
pub fn show_generation(generation: u64, buf: &mut [u8]) -> Option<usize> {
    show_decimal(generation, buf)
}

/// The length of the longest output of [`show_transitions`] (`u64::MAX` and a newline).
pub const TRANSITIONS_SHOW_MAX_LEN: usize = GENERATION_SHOW_MAX_LEN;

/// Writes what reading the `transitions` attribute returns for `transitions` (decimal, no
/// leading zeros, one newline) at the start of `buf` and returns its length, or `None` if
/// `buf` is shorter than that.
pub fn show_transitions(transitions: u64, buf: &mut [u8]) -> Option<usize> {
    show_decimal(transitions, buf)
}

/// `number` in decimal and a newline at the start of `buf`.
fn show_decimal(number: u64, buf: &mut [u8]) -> Option<usize> {
    // Digits from the lowest, into the end of a scratch buffer; no allocation, no formatter.
    // It holds the 20 digits of `u64::MAX`, so the walk never runs off its start (`None` then
    // would be a bug, not a panic).
    let mut digits = [0u8; GENERATION_SHOW_MAX_LEN - 1];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start = start.checked_sub(1)?;
        *digits.get_mut(start)? = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let number = digits.get(start..)?;
    let len = number.len() + 1;
    let out = buf.get_mut(..len)?;
    let (text, newline) = out.split_at_mut(number.len());
    text.copy_from_slice(number);
    newline.copy_from_slice(b"\n");
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_fits_its_attributes_longest_output_and_one_is_that_long() {
        let mut buf = [0u8; SHOW_MAX_LEN];
        let lens = State::ALL.map(|state| show(state, &mut buf).unwrap());
        assert_eq!(lens.into_iter().max(), Some(SHOW_MAX_LEN));
        let mut buf = [0u8; FLAVOUR_SHOW_MAX_LEN];
        let lens = Flavour::ALL.map(|flavour| show_flavour(flavour, &mut buf).unwrap());
        assert_eq!(lens.into_iter().max(), Some(FLAVOUR_SHOW_MAX_LEN));
    }

    #[test]
    fn show_generation_writes_decimal_and_a_newline() {
        let mut page = [0xAAu8; 64];
        for (generation, text) in [
            (0, &b"0\n"[..]),
            (7, b"7\n"),
            (10, b"10\n"),
            (1234567890, b"1234567890\n"),
            (u64::MAX, b"18446744073709551615\n"),
        ] {
            let len = show_generation(generation, &mut page).unwrap();
            assert_eq!(&page[..len], text);
            assert_eq!(page[len], 0xAA, "show_generation wrote past its length");
        }
        assert_eq!(
            show_generation(u64::MAX, &mut page),
            Some(GENERATION_SHOW_MAX_LEN)
        );
    }

    #[test]
    fn show_transitions_writes_decimal_and_a_newline() {
        let mut page = [0xAAu8; 64];
        for (transitions, text) in [(0, &b"0\n"[..]), (3, b"3\n"), (100, b"100\n")] {
            let len = show_transitions(transitions, &mut page).unwrap();
            assert_eq!(&page[..len], text);
            assert_eq!(page[len], 0xAA, "show_transitions wrote past its length");
        }
        assert_eq!(
            show_transitions(u64::MAX, &mut page),
            Some(TRANSITIONS_SHOW_MAX_LEN)
        );
        assert_eq!(show_transitions(10, &mut page[..2]), None);
    }

    #[test]
    fn show_generation_refuses_a_buffer_too_short() {
        let mut small = [0u8; 2];
        assert_eq!(show_generation(10, &mut small), None);
        assert_eq!(show_generation(9, &mut small), Some(2));
    }

    #[test]
    fn show_writes_the_word_and_a_newline() {
        let mut page = [0xAAu8; 64];
        let len = show(State::Prepared, &mut page).unwrap();
        assert_eq!(&page[..len], b"prepared\n");
        assert_eq!(page[len], 0xAA, "show wrote past its length");
    }

    #[test]
    fn show_refuses_a_buffer_too_short() {
        let mut small = [0u8; 6];
        assert_eq!(show(State::Normal, &mut small), None);
        let mut exact = [0u8; 7];
        assert_eq!(show(State::Normal, &mut exact), Some(7));
    }

    #[test]
    fn the_longest_output_fits_show_max_len() {
        let mut buf = [0u8; SHOW_MAX_LEN];
        for state in State::ALL {
            assert!(show(state, &mut buf).is_some(), "{state}");
        }
        assert_eq!(SHOW_MAX_LEN, "undefined\n".len());
    }
}
