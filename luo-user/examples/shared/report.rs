//! What the example programs `workload` and `counter` report on standard output, one line
//! each: the demo's host reads these lines (xtask's timeline and systemd scenario include this
//! file), so the programs print them and the host parses them through one definition.

// Each includer uses part of this module.
#![allow(dead_code)]

use std::fmt;

/// One line of a report: `PROGRAM: WHAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report<'a> {
    /// `counter: started at N`: the counter starts from N (its checkpoint, or 0).
    Started(u64),
    /// `counter: checkpointed N`: the counter wrote N to its checkpoint and stops.
    Checkpointed(u64),
    /// `workload: counter at N`, every second: the workload's counter in its memory.
    CounterAt(u64),
    /// `workload: M MiB stamped in T ms, check C`: the workload's memory is ready.
    Stamped {
        /// The memory's size in MiB.
        mib: u64,
        /// How long stamping took, in milliseconds.
        millis: u128,
        /// The check over every page.
        check: u64,
    },
    /// `workload: running: the agent keeps session S for the live update`.
    Running {
        /// The session the agent keeps.
        session: &'a str,
    },
    /// `workload: restored M MiB from session S, check C (every page checked in T ms);
    /// counter resumes at V`: the workload claimed its memory back after a live update.
    Restored {
        /// The memory's size in MiB.
        mib: u64,
        /// The session it came from.
        session: &'a str,
        /// The check over every page, which must be the one of [`Report::Stamped`].
        check: u64,
        /// How long checking took, in milliseconds.
        millis: u128,
        /// The counter found in the memory.
        resumes_at: u64,
    },
    /// `workload: stopped at N`: the workload ran for its time and stops.
    Stopped(u64),
}

impl Report<'_> {
    /// The program that prints this report, and the start of its line.
    pub fn program(&self) -> &'static str {
        match self {
            Report::Started(_) | Report::Checkpointed(_) => "counter",
            _ => "workload",
        }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.program())?;
        match self {
            Report::Started(value) => write!(f, "started at {value}"),
            Report::Checkpointed(value) => write!(f, "checkpointed {value}"),
            Report::CounterAt(value) => write!(f, "counter at {value}"),
            Report::Stamped { mib, millis, check } => {
                write!(f, "{mib} MiB stamped in {millis} ms, check {check:016x}")
            }
            Report::Running { session } => write!(
                f,
                "running: the agent keeps session {session} for the live update"
            ),
            Report::Restored {
                mib,
                session,
                check,
                millis,
                resumes_at,
            } => write!(
                f,
                "restored {mib} MiB from session {session}, check {check:016x} (every page \
                 checked in {millis} ms); counter resumes at {resumes_at}"
            ),
            Report::Stopped(value) => write!(f, "stopped at {value}"),
        }
    }
}

impl<'a> Report<'a> {
    /// The report `line` is (its newline and surrounding blanks ignored), if it is one.
    pub fn parse(line: &'a str) -> Option<Report<'a>> {
        let line = line.trim();
        if let Some(what) = line.strip_prefix("counter: ") {
            return number_after(what, "started at ")
                .map(Report::Started)
                .or_else(|| number_after(what, "checkpointed ").map(Report::Checkpointed));
        }
        let what = line.strip_prefix("workload: ")?;
        if let Some(value) = number_after(what, "counter at ") {
            return Some(Report::CounterAt(value));
        }
        if let Some(value) = number_after(what, "stopped at ") {
            return Some(Report::Stopped(value));
        }
        if let Some(rest) = what.strip_prefix("running: the agent keeps session ") {
            let session = rest.strip_suffix(" for the live update")?;
            return Some(Report::Running { session });
        }
        if let Some(rest) = what.strip_prefix("restored ") {
            let (mib, rest) = rest.split_once(" MiB from session ")?;
            let (session, rest) = rest.split_once(", check ")?;
            let (check, rest) = rest.split_once(" (every page checked in ")?;
            let (millis, rest) = rest.split_once(" ms); counter resumes at ")?;
            return Some(Report::Restored {
                mib: mib.parse().ok()?,
                session,
                check: u64::from_str_radix(check, 16).ok()?,
                millis: millis.parse().ok()?,
                resumes_at: rest.parse().ok()?,
            });
        }
        let (mib, rest) = what.split_once(" MiB stamped in ")?;
        let (millis, check) = rest.split_once(" ms, check ")?;
        Some(Report::Stamped {
            mib: mib.parse().ok()?,
            millis: millis.parse().ok()?,
            check: u64::from_str_radix(check, 16).ok()?,
        })
    }
}

/// The report in `line`, which may hold text before it: a journal line
/// (`workload[98]: workload: counter at 5`), a console line, a note of a guest script.
pub fn find(line: &str) -> Option<Report<'_>> {
    ["workload: ", "counter: "]
        .into_iter()
        .find_map(|program| line.find(program).and_then(|at| Report::parse(&line[at..])))
}

/// The number that is all of `text` after `prefix`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_reads_back_as_printed() {
        let reports = [
            Report::Started(0),
            Report::Checkpointed(17),
            Report::CounterAt(u64::MAX),
            Report::Stamped {
                mib: 256,
                millis: 1_234,
                check: 0x8f97,
            },
            Report::Running {
                session: "workload",
            },
            Report::Restored {
                mib: 256,
                session: "workload",
                check: 0x8f97,
                millis: 4_321,
                resumes_at: 80,
            },
            Report::Stopped(120),
        ];
        for report in reports {
            let line = format!("{report}\n");
            assert_eq!(Report::parse(&line), Some(report), "{line}");
        }
    }

    #[test]
    fn the_lines_are_the_ones_the_scripts_grep() {
        let stamped = Report::Stamped {
            mib: 64,
            millis: 9,
            check: 1,
        };
        assert_eq!(
            stamped.to_string(),
            "workload: 64 MiB stamped in 9 ms, check 0000000000000001"
        );
        assert!(
            Report::Running { session: "s" }
                .to_string()
                .starts_with("workload: running:")
        );
        assert_eq!(Report::parse("workload: counter at 5 and more"), None);
        assert_eq!(Report::parse("counter: counter at 5"), None);
        let journal = "[ 81.2] workload[98]: workload: counter at 260";
        assert_eq!(find(journal), Some(Report::CounterAt(260)));
    }
}
