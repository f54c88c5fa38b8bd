//! The reading half of luo's kernel log lines (`log.rs` is the writing half): finds luo's lines
//! in a console line, a `dmesg` line or a `/dev/kmsg` record, tells them from mainline's
//! orchestrator's, and reads their values back.
//!
//! Only the host reads lines, so the module does not compile this file; the crate shows it
//! with `log.rs` as one module, `log`.

use crate::log::{Froze, Kind, Line, Ready, Switched, PREFIX};
use crate::log_lines::OBSERVING;
use crate::{Flavour, State};

impl Kind {
    /// The kind of `text`, a line without the prefix, if it is one of luo's.
    pub fn of(text: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| text.starts_with(kind.opening()))
    }
}

impl Line<'_> {
    /// Which kind of line this is.
    pub fn kind(&self) -> Kind {
        match self {
            Line::Switched(switched) => switched.kind(),
            Line::Ready(_) => Kind::Ready,
            Line::Froze(_) => Kind::Froze,
            Line::NotALiveUpdate(_) => Kind::NotALiveUpdate,
            Line::NotLoading(_) => Kind::NotLoading,
            Line::KhoSubtreeRefused { .. } => Kind::KhoSubtreeRefused,
            Line::KhoOff => Kind::KhoOff,
            Line::TestHookCreated => Kind::TestHookCreated,
            Line::TestHookDamaged(_) => Kind::TestHookDamaged,
            Line::ObserverUncounted(_) | Line::ObserverIllegal { .. } => Kind::ObserverInconsistent,
        }
    }
}

impl Switched {
    /// The change `text` (a line without the prefix) reports, if it reports one.
    pub fn parse(text: &str) -> Option<Switched> {
        let kind = Kind::of(text)
            .filter(|kind| matches!(kind, Kind::Switched | Kind::ObserverSwitched))?;
        let (from, rest) = bracketed(text.strip_prefix(kind.opening())?)?;
        let (to, rest) = bracketed(rest.strip_prefix(" to [")?)?;
        rest.is_empty().then_some(Switched {
            flavour: match kind {
                Kind::ObserverSwitched => Flavour::Observer,
                _ => Flavour::Standalone,
            },
            from,
            to,
        })
    }
}

impl Ready {
    /// The line `text` (without the prefix) is, if it is a ready line.
    pub fn parse(text: &str) -> Option<Ready> {
        let (state, rest) = bracketed(text.strip_prefix(Kind::Ready.opening())?)?;
        let rest = rest.strip_prefix(" (live update generation ")?;
        let (generation, rest) = rest.split_once([',', ')'])?;
        // The split took the comma that opens `OBSERVING`.
        let (flavour, rest) = match rest.strip_prefix(OBSERVING.trim_start_matches(',')) {
            Some(rest) => (Flavour::Observer, rest.strip_prefix(')')?),
            None => (Flavour::Standalone, rest),
        };
        Some(Ready {
            flavour,
            state,
            generation: generation.parse().ok()?,
            init_us: micros(rest.strip_prefix(" in ")?)?,
        })
    }
}

impl Froze {
    /// The line `text` (without the prefix) is, if it is the freeze's line.
    pub fn parse(text: &str) -> Option<Froze> {
        let micros = micros(text.strip_prefix(Kind::Froze.opening())?)?;
        Some(Froze { micros })
    }
}

/// One of luo's lines as a reader finds it: in a console line, a `dmesg` line or a
/// `/dev/kmsg` record's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Which line it is.
    pub kind: Kind,
    /// The line after [`PREFIX`], without the newline.
    pub text: &'a str,
}

impl<'a> Message<'a> {
    /// luo's line in `line`, if it is one: `line` may start with a printk time
    /// (`[   12.345678] `) before the prefix. A line of mainline's orchestrator, which has
    /// the same prefix, is not luo's.
    pub fn find(line: &'a str) -> Option<Message<'a>> {
        let line = line.trim_end_matches(['\n', '\r']);
        let text = strip_printk_time(line).strip_prefix(PREFIX)?;
        Some(Message {
            kind: Kind::of(text)?,
            text,
        })
    }

    /// The change this line reports, if it is a [`Kind::Switched`] or
    /// [`Kind::ObserverSwitched`] line.
    pub fn switched(&self) -> Option<Switched> {
        Switched::parse(self.text)
    }

    /// The ready line's values, if it is one.
    pub fn ready(&self) -> Option<Ready> {
        Ready::parse(self.text)
    }

    /// The freeze's time, if it is the freeze's line.
    pub fn froze(&self) -> Option<Froze> {
        Froze::parse(self.text)
    }
}

/// `line` without a leading printk time (`[   12.345678] `), as `dmesg` and the console show it.
fn strip_printk_time(line: &str) -> &str {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .filter(|(stamp, _)| {
            let stamp = stamp.trim_start();
            !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        })
        .map_or(line, |(_, text)| text)
}

/// A state word and the text after its `]`.
fn bracketed(text: &str) -> Option<(State, &str)> {
    let (word, rest) = text.split_once(']')?;
    Some((State::from_word(word.as_bytes())?, rest))
}

/// `T us`, exactly.
fn micros(text: &str) -> Option<i64> {
    text.strip_suffix(" us")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;
    use crate::log::{NotALiveUpdate, NotLoading};

    /// One line of every kind, with values where the line has them, and its kind.
    fn every_line() -> Vec<(Kind, String)> {
        let error = "ENOMEM";
        let subtree = c"luo-v3-state";
        let lines = [
            Line::Switched(Switched {
                flavour: Flavour::Standalone,
                from: State::Normal,
                to: State::Prepared,
            }),
            Line::Switched(Switched {
                flavour: Flavour::Observer,
                from: State::Frozen,
                to: State::Updated,
            }),
            Line::Ready(Ready {
                flavour: Flavour::Standalone,
                state: State::Normal,
                generation: 0,
                init_us: 412,
            }),
            Line::Froze(Froze { micros: 37 }),
            Line::NotALiveUpdate(NotALiveUpdate::NoHandoverData),
            Line::NotLoading(NotLoading::NoTestHook),
            Line::KhoSubtreeRefused {
                subtree,
                error: &error,
            },
            Line::KhoOff,
            Line::TestHookCreated,
            Line::TestHookDamaged(&"BadMagic"),
            Line::ObserverIllegal {
                from: State::Normal,
                to: State::Updated,
            },
        ];
        lines
            .iter()
            .map(|line| {
                let text = line.to_string();
                assert_eq!(Kind::of(&text), Some(line.kind()), "{text}");
                (line.kind(), text)
            })
            .collect()
    }

    #[test]
    fn every_line_is_found_as_its_own_kind() {
        let lines = every_line();
        // One line of each kind: the same kinds as `Kind::ALL`, none twice.
        let kinds: HashSet<Kind> = lines.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, HashSet::from(Kind::ALL));
        assert_eq!(lines.len(), Kind::ALL.len());
        for (kind, text) in lines {
            let console = std::format!("[   12.345678] {PREFIX}{text}");
            let found = Message::find(&console).unwrap();
            assert_eq!(found.kind, kind, "{text}");
            assert_eq!(found.text, text);
            assert_eq!(
                Message::find(&std::format!("{PREFIX}{text}\n")),
                Some(found)
            );
        }
    }

    #[test]
    fn the_values_read_back_are_the_values_printed() {
        for flavour in Flavour::ALL {
            for (from, to) in [
                (State::Normal, State::Prepared),
                (State::Updated, State::Normal),
            ] {
                let switched = Switched { flavour, from, to };
                let line = std::format!("{PREFIX}{switched}");
                assert_eq!(Message::find(&line).unwrap().switched(), Some(switched));
            }
            let ready = Ready {
                flavour,
                state: State::Updated,
                generation: 18_446_744_073_709_551_615,
                init_us: 3_456,
            };
            let line = std::format!("{PREFIX}{ready}");
            assert_eq!(Message::find(&line).unwrap().ready(), Some(ready));
        }
        let froze = Froze { micros: 1 };
        let line = std::format!("[ 5.1] {PREFIX}{froze}");
        assert_eq!(Message::find(&line).unwrap().froze(), Some(froze));
    }

    #[test]
    fn an_opening_that_starts_another_is_tried_after_it() {
        for (i, earlier) in Kind::ALL.iter().enumerate() {
            for later in &Kind::ALL[i + 1..] {
                assert!(
                    !later.opening().starts_with(earlier.opening()),
                    "{later:?} would be read as {earlier:?}"
                );
            }
        }
    }

    #[test]
    fn one_kind_does_not_read_as_another() {
        let ready =
            Message::find("luo: Ready in state [normal] (live update generation 0) in 5 us")
                .unwrap();
        assert_eq!(ready.switched(), None);
        assert_eq!(ready.froze(), None);
        let switched =
            Message::find("luo: observer: Switched from [normal] to [prepared]").unwrap();
        assert_eq!(switched.kind, Kind::ObserverSwitched);
        assert_eq!(switched.ready(), None);
        assert_eq!(
            Switched::parse("Switched from [normal] to [prepared] again"),
            None
        );
        assert_eq!(
            Switched::parse("Switched from [hibernating] to [normal]"),
            None
        );
    }

    /// Lines of mainline's orchestrator, as `kernel/liveupdate/luo_*.c` of Linux 7.3 print
    /// them (`pr_fmt` is `KBUILD_MODNAME ": "`, and the object is `luo.o`).
    const MAINLINE: &[&str] = &[
        "luo: Retrieved live update data, liveupdate number: 1",
        "luo: Disabling liveupdate because KHO is disabled",
        "luo: failed to retrieve LUO state 'luo-v1' from KHO: -ENOENT",
        "luo: LUO state is too small (8 < 16)",
        "luo: LUO state is incompatible with 'luo-v1'",
        "luo: failed to allocate/preserve LUO state memory",
        "luo: failed to prepare LUO state: -12",
        "luo: Freeze failed for token[0x1] handler[memfd-v1] err[-EBUSY]",
        "luo: No registered handler for compatible 'memfd-v1'",
        "luo: File count mismatch: expected 2, found 1",
        "luo: File handler registration failed: Compatible string 'memfd-v1' already registered.",
        "luo: Failed to unregister FLB 'x': not found in file handler 'memfd-v1'",
        "luo: Unable to finish session [luo-memory] on release",
        "luo: The file was successfully preserved, but response to user failed",
        "luo: Failed to allocate session [luo-memory] during deserialization -ENOMEM",
        "luo: Failed to insert session [luo-memory] -EEXIST",
        "luo: Failed to deserialize files for session [luo-memory] -EINVAL",
        "luo: Block set is corrupted",
        "luo: Block contains invalid entry count: 7",
    ];

    /// Lines the module loader prints about the module, under its name.
    const LOADER: &[&str] = &[
        "luo: loading out-of-tree module taints kernel.",
        "luo: module verification failed: signature and/or required key missing - tainting kernel",
    ];

    #[test]
    fn mainline_lines_are_not_taken_for_luos() {
        for line in MAINLINE.iter().chain(LOADER) {
            assert_eq!(Message::find(line), None, "{line}");
            let console = std::format!("[    0.912345] {line}");
            assert_eq!(Message::find(&console), None, "{console}");
        }
    }

    #[test]
    fn only_a_prefixed_line_is_luos() {
        assert_eq!(Message::find("Switched from [normal] to [prepared]"), None);
        assert_eq!(
            Message::find("KHO: luo: Switched from [normal] to [prepared]"),
            None
        );
        assert_eq!(
            Message::find("[ oops] luo: Switched from [normal] to [prepared]"),
            None
        );
    }
}
