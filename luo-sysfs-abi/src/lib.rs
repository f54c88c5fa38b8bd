//! The sysfs ABI of the live update orchestrator: where the files are, the exact bytes the
//! `state`, `generation`, `flavour` and `transitions` attributes show, a strict parser for what userspace reads, and the generator of
//! `Documentation/ABI/testing/sysfs-kernel-liveupdate`.
//!
//! It also holds luo's kernel log lines ([`log`]): the module prints them, and the host's
//! readers recognise them, apart from the lines of mainline's orchestrator.
//!
//! The kernel module compiles `path.rs`, `show.rs`, `flavour.rs` and `log.rs` (the writing
//! half of [`log`]; the reading half, `log_reader.rs`, is the host's) from this directory; they use nothing but `core` and reach [`State`] through `crate::State`, which
//! both this crate and the module re-export at their roots. The parser keeps what it read in a `heapless` buffer, so an error
//! can quote the bytes without an allocator; the module does not compile it.

#![no_std]

#[cfg(test)]
extern crate std;

mod abi_doc;
mod flavour;
// The two halves of `log`: the module compiles `log.rs` alone.
#[path = "log.rs"]
mod log_lines;
mod log_reader;
mod parse;
pub mod path;
mod show;

/// luo's kernel log lines: the module prints them through [`Line`](log::Line), and the host's
/// readers find them in console and `dmesg` lines, apart from mainline's orchestrator's, with
/// [`Message`](log::Message).
///
/// The writing half (`log.rs`) is one of the files the module compiles; the reading half
/// (`log_reader.rs`: [`Message`](log::Message), [`Kind::of`](log::Kind::of) and the `parse`
/// functions) is the host's alone.
pub mod log {
    pub use crate::log_lines::*;
    pub use crate::log_reader::Message;
}

pub use abi_doc::write_abi_doc;
pub use flavour::Flavour;
pub use luo_state::State;
pub use parse::{
    parse_flavour, parse_generation, parse_state, parse_transitions, Content, ParseError,
};
pub use show::{
    show, show_flavour, show_generation, show_transitions, FLAVOUR_SHOW_MAX_LEN,
    GENERATION_SHOW_MAX_LEN, SHOW_MAX_LEN, TRANSITIONS_SHOW_MAX_LEN,
};
