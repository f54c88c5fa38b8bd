//! The JSON records of `luoctl watch --json` and `luoctl agent --json` that the demo's
//! timeline reads, parsed with serde rather than searched as text.
//!
//! xtask's timeline includes this file, and luoctl's agent test reads the agent's own records
//! with it: the reader's types live with the producer, and a change of the records that the
//! timeline would no longer read fails luoctl's tests.
//!
//! luoctl prints one object per line, its first field `"v"` the schema version
//! (`luoctl/src/json.rs`); a field is only ever appended within a version, so these types name
//! the fields the timeline needs and ignore the rest, and refuse any other version.

use serde::Deserialize;

/// The version of luoctl's records that these types read (`luoctl::json::SCHEMA_VERSION`).
pub const SCHEMA_VERSION: u32 = 1;

/// One record of luoctl's `--json` output.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A state the watcher or the agent read: `{"v":1,"time":...,"seq":N,"prev":...,
    /// "state":WORD}`.
    State {
        /// The state's word.
        state: String,
    },
    /// One of the agent's other records.
    Agent(AgentRecord),
}

/// What the agent's records (`"record":KIND`) say, as far as the timeline reads them.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum AgentRecord {
    /// Every prepared hook succeeded: `luoctl kexec` may go.
    Ready,
    /// The keeper's sessions: a memfd kept, preserved, claimed, finished, ...
    Session {
        /// What happened to the session (`preserved`, `claimed`, ...).
        event: String,
        /// How long it took, for `preserved` and `claimed`.
        duration_us: Option<u64>,
    },
    /// A hook, a retry, a cancel, a finish: not on the timeline.
    #[serde(other)]
    Other,
}

/// The fields every record starts with, and the state records' own.
#[derive(Deserialize)]
struct Head {
    v: u32,
    record: Option<String>,
    state: Option<String>,
}

impl Record {
    /// The record `line` holds, if it is one of luoctl's of [`SCHEMA_VERSION`].
    pub fn parse(line: &str) -> Option<Record> {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        let head: Head = serde_json::from_str(line).ok()?;
        if head.v != SCHEMA_VERSION {
            return None;
        }
        match (head.record, head.state) {
            (Some(_), _) => serde_json::from_str(line).ok().map(Record::Agent),
            (None, Some(state)) => Some(Record::State { state }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_of_the_watcher_and_the_agent_are_read() {
        let record = r#"{"v":1,"time":"2026-11-24T15:00:00.000000Z","seq":1,"prev":"prepared","state":"frozen","transitions":7}"#;
        assert_eq!(
            Record::parse(record),
            Some(Record::State {
                state: "frozen".to_owned()
            })
        );
    }

    #[test]
    fn the_agents_records_are_read_by_kind() {
        let ready = r#"{"v":1,"time":"t","record":"ready","seq":1}"#;
        assert_eq!(
            Record::parse(ready),
            Some(Record::Agent(AgentRecord::Ready))
        );
        let preserved = r#"{"v":1,"time":"t","record":"session","event":"preserved","session":"workload","files":1,"duration_us":4810}"#;
        assert_eq!(
            Record::parse(preserved),
            Some(Record::Agent(AgentRecord::Session {
                event: "preserved".to_owned(),
                duration_us: Some(4810)
            }))
        );
        let hook = r#"{"v":1,"time":"t","record":"hook","hook":"10-checkpoint","result":"succeeded","duration_ms":12}"#;
        assert_eq!(Record::parse(hook), Some(Record::Agent(AgentRecord::Other)));
    }

    #[test]
    fn text_and_other_versions_are_not_records() {
        assert_eq!(Record::parse("workload: restored 256 MiB"), None);
        assert_eq!(Record::parse(r#"{"v":2,"state":"frozen"}"#), None);
        assert_eq!(Record::parse(r#"{"v":1,"time":"t","record":"ready""#), None);
    }
}
