//! The timeline of a live update as the host saw it: each step taken from a guest line, with
//! the host's time of arrival.

use std::time::{Instant, SystemTime};

use crate::run::Result;
use crate::vm::Stream;

/// What the host saw of a live update, each moment taken when the line reached it.
#[derive(Default)]
pub struct Timeline {
    /// `normal` to `prepared` (the module's log line).
    pub prepared: Option<Instant>,
    /// `prepared` to `frozen` in the reboot notifier: the blackout window opens.
    pub frozen: Option<Instant>,
    /// The old kernel jumps into the new one.
    pub jump: Option<Instant>,
    /// The new kernel's module found the handover: `updated`.
    pub updated: Option<Instant>,
    /// `finish`: back to `normal`.
    pub normal: Option<Instant>,
    /// The workload's counter at the checkpoint.
    pub checkpointed: Option<u64>,
    /// Where the restored workload started counting.
    pub restored: Option<u64>,
    /// The state the script read at the end.
    pub final_state: Option<String>,
    /// The lines worth showing a person, with their arrival times.
    pub events: Vec<(Instant, String)>,
    /// The host's wall clock and monotonic clock at the same moment, to print wall times.
    pub origin: Option<(SystemTime, Instant)>,
}

impl Timeline {
    /// Takes in one line of the guest, seen by the host at `at`.
    pub fn see(&mut self, stream: Stream, line: &str, at: Instant) {
        let text = line.trim();
        let console_text = text.split_once("] ").map_or(text, |(_, rest)| rest);
        let mut keep = true;
        match stream {
            Stream::Console
                if console_text.starts_with("luo: Switched from [normal] to [prepared]") =>
            {
                self.prepared = Some(at)
            }
            Stream::Console
                if console_text.starts_with("luo: Switched from [prepared] to [frozen]") =>
            {
                self.frozen = Some(at)
            }
            Stream::Console if console_text.starts_with("kexec_core: Starting new kernel") => {
                self.jump = Some(at)
            }
            Stream::Console if console_text.starts_with("luo: Ready in state [updated]") => {
                self.updated = Some(at)
            }
            Stream::Console
                if console_text.starts_with("luo: Switched from [updated] to [normal]") =>
            {
                self.normal = Some(at)
            }
            Stream::Console if console_text.starts_with("luo: ") => {}
            Stream::Stdout if text.starts_with("agent: checkpointed counter ") => {
                self.checkpointed = number_after(text, "agent: checkpointed counter ")
            }
            Stream::Stdout if text.starts_with("agent: restored counter from ") => {
                self.restored = number_after(text, "agent: restored counter from ")
            }
            Stream::Stdout if text.starts_with("demo: final state ") => {
                self.final_state = text.strip_prefix("demo: final state ").map(str::to_owned)
            }
            Stream::Stdout => {}
            Stream::Console => keep = false,
        }
        if keep && !text.is_empty() {
            let shown = if stream == Stream::Console {
                console_text
            } else {
                text
            };
            self.events.push((at, shown.to_owned()));
        }
    }

    /// Checks that every step happened, in order, and that the workload resumed where it was.
    pub fn verify(&self) -> Result {
        let steps = [
            ("prepared", self.prepared),
            ("frozen", self.frozen),
            ("kexec jump", self.jump),
            ("updated", self.updated),
            ("normal", self.normal),
        ];
        let mut last: Option<(&str, Instant)> = None;
        for (name, at) in steps {
            let at = at.ok_or_else(|| format!("the guest never reached '{name}'"))?;
            if let Some((before, then)) = last
                && at < then
            {
                return Err(format!("'{name}' came before '{before}'"));
            }
            last = Some((name, at));
        }
        match (self.checkpointed, self.restored) {
            (Some(before), Some(after)) if before == after && before > 0 => {}
            (before, after) => {
                return Err(format!(
                    "the workload did not resume: checkpointed {before:?}, restored {after:?}"
                ));
            }
        }
        match self.final_state.as_deref() {
            Some("normal") => Ok(()),
            other => Err(format!("the final state is {other:?}, expected 'normal'")),
        }
    }
}

fn number_after(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The two numbers the note reports.
pub fn summary(timeline: &Timeline) -> String {
    let span = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}s", b.saturating_duration_since(a).as_secs_f64()),
        _ => "?".to_owned(),
    };
    format!(
        "blackout (frozen -> updated) {}, prepare -> normal {}",
        span(timeline.frozen, timeline.updated),
        span(timeline.prepared, timeline.normal)
    )
}
