//! One printed record of `watch` and `agent`: a change, or the state found at start, as a
//! text line, a JSON line, or a `--format` template.

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use luo_user::{Change, State};

use crate::json::Object;

/// What one record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the state was read.
    pub time: SystemTime,
    /// The change's number; 0 for the state found at start.
    pub seq: u64,
    /// The state before; `None` for the state found at start.
    pub prev: Option<State>,
    /// The state now.
    pub state: State,
    /// The state file.
    pub path: &'a Path,
    /// How many changes of state the kernel made since it started, read together with
    /// `state` (a `luo_user::Snapshot`): the JSON field `transitions`, left out while unknown
    /// (a module older than the counter, or a state file with no `transitions` beside it).
    pub transitions: Option<u64>,
}

impl<'a> Record<'a> {
    /// The record of a change.
    pub fn change(change: &Change, path: &'a Path) -> Self {
        Record {
            time: change.time,
            seq: change.seq,
            prev: Some(change.prev),
            state: change.state,
            path,
            transitions: None,
        }
    }

    /// The record of the state found at start (`--initial`).
    pub fn initial(state: State, path: &'a Path) -> Self {
        Record {
            time: SystemTime::now(),
            seq: 0,
            prev: None,
            state,
            path,
            transitions: None,
        }
    }
}

/// How records are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Style {
    /// `TIME PREV -> STATE`.
    Text,
    /// `{"v":1,"time":...,"seq":...,"prev":...,"state":...}` (see [`crate::json`]).
    Json,
    /// A `--format` template.
    Template(String),
}

impl Style {
    /// The style the options ask for.
    pub fn new(json: bool, format: Option<&str>) -> Self {
        match (json, format) {
            (true, _) => Style::Json,
            (false, Some(template)) => Style::Template(template.to_owned()),
            (false, None) => Style::Text,
        }
    }

    /// Writes `record` as one line and flushes it, so a reader sees each change at once.
    pub fn write(&self, out: &mut impl Write, record: &Record<'_>) -> io::Result<()> {
        self.write_missed(out, record, None)
    }

    /// Writes `record` as [`Style::write`] does, with `missed`: how many changes came between
    /// the previous record and this one that it does not show (the transition counter rose by
    /// more than the change shown), `None` when unknown. JSON appends `"missed":N` after
    /// `transitions`, text appends ` (missed N)` when N is not 0, and a template has `%m`.
    pub fn write_missed(
        &self,
        out: &mut impl Write,
        record: &Record<'_>,
        missed: Option<u64>,
    ) -> io::Result<()> {
        let time = humantime::format_rfc3339_micros(record.time);
        let prev = record.prev.map_or("-", State::word);
        match self {
            Style::Text => match missed {
                Some(missed) if missed > 0 => {
                    writeln!(out, "{time} {prev} -> {} (missed {missed})", record.state)?
                }
                _ => writeln!(out, "{time} {prev} -> {}", record.state)?,
            },
            Style::Json => {
                // The fields of the records before the version came first, in their order.
                let object = Object::new()
                    .str("time", &time.to_string())
                    .num("seq", record.seq)
                    .opt_str("prev", record.prev.map(State::word))
                    .str("state", record.state.word())
                    .opt_num("transitions", record.transitions)
                    .opt_num("missed", missed);
                writeln!(out, "{object}")?
            }
            Style::Template(template) => writeln!(
                out,
                "{}",
                expand(template, record, missed, &time.to_string())
            )?,
        }
        out.flush()
    }
}

/// Expands `%t %s %p %n %f %c %m %%` (`%c` and `%m` are `-` when unknown); any other `%x`
/// stays as written.
fn expand(template: &str, record: &Record<'_>, missed: Option<u64>, time: &str) -> String {
    let or_dash = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    let mut out = String::with_capacity(template.len() + 32);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push_str(time),
            Some('s') => out.push_str(record.state.word()),
            Some('p') => out.push_str(record.prev.map_or("-", State::word)),
            Some('n') => out.push_str(&record.seq.to_string()),
            Some('f') => out.push_str(&record.path.to_string_lossy()),
            Some('c') => out.push_str(&or_dash(record.transitions)),
            Some('m') => out.push_str(&or_dash(missed)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(prev: Option<State>) -> Record<'static> {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            seq: 3,
            prev,
            state: State::Prepared,
            path: Path::new("/sys/kernel/liveupdate/state"),
            transitions: None,
        }
    }

    fn line(style: Style, record: &Record<'_>) -> String {
        let mut out = Vec::new();
        style.write(&mut out, record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_text_line_has_the_utc_time_and_both_states() {
        assert_eq!(
            line(Style::Text, &record(Some(State::Normal))),
            "2027-01-15T08:00:00.000000Z normal -> prepared\n"
        );
    }

    #[test]
    fn a_json_line_has_the_version_then_time_seq_prev_and_state() {
        assert_eq!(
            line(Style::Json, &record(Some(State::Normal))),
            "{\"v\":1,\"time\":\"2027-01-15T08:00:00.000000Z\",\"seq\":3,\"prev\":\"normal\",\"state\":\"prepared\"}\n"
        );
    }

    #[test]
    fn a_known_transition_count_is_the_last_field() {
        let record = Record {
            transitions: Some(12),
            ..record(Some(State::Normal))
        };
        assert!(
            line(Style::Json, &record).ends_with("\"state\":\"prepared\",\"transitions\":12}\n")
        );
    }

    #[test]
    fn missed_changes_follow_the_count_in_every_style() {
        let counted = Record {
            transitions: Some(9),
            ..record(Some(State::Prepared))
        };
        assert!(
            line_missed(Style::Json, &counted, Some(2))
                .ends_with("\"state\":\"prepared\",\"transitions\":9,\"missed\":2}\n")
        );
        assert!(
            line_missed(Style::Text, &counted, Some(2))
                .ends_with(" prepared -> prepared (missed 2)\n")
        );
        assert!(line_missed(Style::Text, &counted, Some(0)).ends_with(" prepared -> prepared\n"));
        assert_eq!(
            line_missed(Style::Template("%c %m".into()), &counted, Some(2)),
            "9 2\n"
        );
        assert_eq!(
            line_missed(Style::Template("%c %m".into()), &record(None), None),
            "- -\n"
        );
        assert!(!line_missed(Style::Json, &counted, None).contains("missed"));
    }

    fn line_missed(style: Style, record: &Record<'_>, missed: Option<u64>) -> String {
        let mut out = Vec::new();
        style.write_missed(&mut out, record, missed).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_initial_record_has_no_previous_state() {
        assert!(line(Style::Json, &record(None)).contains("\"prev\":null"));
        assert!(line(Style::Text, &record(None)).ends_with(" - -> prepared\n"));
    }

    #[test]
    fn a_template_expands_every_specifier() {
        let style = Style::Template("%n %p>%s at %t in %f 100%% %x%".into());
        assert_eq!(
            line(style, &record(Some(State::Normal))),
            "3 normal>prepared at 2027-01-15T08:00:00.000000Z in /sys/kernel/liveupdate/state 100% %x%\n"
        );
    }
}
