//! The environment a hook gets: the change it runs for, as `LUO_*` variables.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::SystemTime;

use luo_state::State;

/// The variables systemd sets for the service itself, which a hook must not take for its own:
/// a hook that sent `READY=1` or answered the watchdog would speak for the agent.
pub const SERVICE_VARIABLES: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

/// The environment a hook gets (see the [`hooks`](crate::hooks) documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookEnv {
    /// The state now.
    pub state: State,
    /// The state before, if there was one.
    pub prev: Option<State>,
    /// The number of the change.
    pub seq: u64,
    /// When the change was read.
    pub time: SystemTime,
    /// The state attribute watched.
    pub state_file: PathBuf,
    /// The live update generation, if known.
    pub generation: Option<u64>,
}

impl HookEnv {
    /// The environment of change number `seq` to `state` from `prev`, read at `time` from
    /// `state_file`.
    pub fn new(
        state: State,
        prev: Option<State>,
        seq: u64,
        time: SystemTime,
        state_file: impl Into<PathBuf>,
    ) -> Self {
        HookEnv {
            state,
            prev,
            seq,
            time,
            state_file: state_file.into(),
            generation: None,
        }
    }

    /// Adds `LUO_GENERATION`.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// The variables, in a fixed order.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let mut vars = vec![
            ("LUO_STATE", self.state.word().into()),
            (
                "LUO_PREV_STATE",
                self.prev.map(State::word).unwrap_or_default().into(),
            ),
            ("LUO_SEQ", self.seq.to_string().into()),
            (
                "LUO_TIME",
                humantime::format_rfc3339_micros(self.time)
                    .to_string()
                    .into(),
            ),
            ("LUO_STATE_FILE", self.state_file.clone().into_os_string()),
        ];
        if let Some(generation) = self.generation {
            vars.push(("LUO_GENERATION", generation.to_string().into()));
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_environment_names_the_change() {
        let env = HookEnv::new(
            State::Prepared,
            Some(State::Normal),
            3,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            "/sys/kernel/liveupdate/state",
        )
        .with_generation(2);
        let vars: Vec<(&str, String)> = env
            .vars()
            .into_iter()
            .map(|(k, v)| (k, v.into_string().unwrap()))
            .collect();
        assert_eq!(
            vars,
            [
                ("LUO_STATE", "prepared".to_owned()),
                ("LUO_PREV_STATE", "normal".to_owned()),
                ("LUO_SEQ", "3".to_owned()),
                ("LUO_TIME", "2027-01-15T08:00:00.000000Z".to_owned()),
                ("LUO_STATE_FILE", "/sys/kernel/liveupdate/state".to_owned()),
                ("LUO_GENERATION", "2".to_owned()),
            ]
        );
    }
}
