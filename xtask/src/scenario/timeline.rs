//! The timeline of a live update: the moments the guest's lines mark, the spans between them
//! with who owns each one (luo, kernel, harness, agent), and their medians over several runs.
//!
//! Two clocks meet here. Every line carries the host's time of arrival, which runs on across
//! the kexec, so spans that cross the jump use it. Console lines also carry the guest kernel's
//! printk time, which is exact within one boot and starts again at zero in the next kernel, so
//! spans within one boot use it when both ends have it. luo measures its own share itself
//! (the freeze in the reboot notifier, init to the state visible) and logs it in microseconds.

use std::time::{Duration, Instant, SystemTime};

use luo_sysfs_abi::log::{self, Message};
use luo_sysfs_abi::{Flavour, State};

use crate::guest::console;
use crate::guest::runner::Stream;
use crate::run::Result;
use crate::scenario::lines;
use crate::scenario::records::{AgentRecord, Record};
use crate::scenario::report::Report;

/// A moment of the live update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The module switched to `prepared`.
    Prepared,
    /// The agent's record: it preserved a workload's memfd in a session (observer flavour).
    Preserved,
    /// The agent's record: every prepared hook succeeded, `luoctl kexec` may go.
    Ready,
    /// The module switched to `frozen`, in the reboot notifier: the blackout begins.
    Frozen,
    /// A watcher in the old kernel read `frozen`.
    FrozenSeen,
    /// `kexec_core: Starting new kernel`: the old kernel's last line.
    Jump,
    /// The new kernel's first console line.
    NewKernel,
    /// The new kernel starts init.
    Init,
    /// The new kernel's luo is up in `updated`.
    ModuleReady,
    /// A watcher in the new kernel read `updated`: the blackout ends.
    UpdatedSeen,
    /// The agent's record: it handed a workload its memfd back (observer flavour).
    Claimed,
    /// The workload resumed: the observer flavour's claimed its memory back and checked it,
    /// the standalone flavour's counter restarted from its checkpoint.
    Restored,
    /// The module switched back to `normal` (`finish`).
    Normal,
}

impl Mark {
    /// Every mark, in the order a live update passes them.
    pub const ALL: [Mark; 13] = [
        Mark::Prepared,
        Mark::Preserved,
        Mark::Ready,
        Mark::Frozen,
        Mark::FrozenSeen,
        Mark::Jump,
        Mark::NewKernel,
        Mark::Init,
        Mark::ModuleReady,
        Mark::UpdatedSeen,
        Mark::Claimed,
        Mark::Restored,
        Mark::Normal,
    ];

    /// Marks that only one flavour has, or that a run may miss without anything being wrong.
    fn optional(self) -> bool {
        matches!(self, Mark::FrozenSeen | Mark::Preserved | Mark::Claimed)
    }

    /// Whether this mark's place in the order of `flavour`'s live update is fixed. Not the
    /// optional ones: they are a watcher's or the agent's records on stdout, which other
    /// processes' lines on stdout, and the kernel's on the console (not in step with stdout),
    /// may overtake. Not luo's ready line:
    /// luo built in (observer) is ready before init, luo.ko (standalone) after it. Not the
    /// standalone counter's restart: the script starts it once the agent listens, and the
    /// agent's restore and finish may come before or after it.
    fn ordered(self, flavour: Option<Flavour>) -> bool {
        !self.optional()
            && self != Mark::ModuleReady
            && !(self == Mark::Restored && flavour == Some(Flavour::Standalone))
    }

    fn name(self) -> &'static str {
        match self {
            Mark::Prepared => "prepared",
            Mark::Preserved => "preserved",
            Mark::Ready => "hooks ready",
            Mark::Frozen => "frozen",
            Mark::FrozenSeen => "frozen seen",
            Mark::Jump => "kexec jump",
            Mark::NewKernel => "new kernel",
            Mark::Init => "init",
            Mark::ModuleReady => "luo ready",
            Mark::UpdatedSeen => "updated seen",
            Mark::Claimed => "claimed",
            Mark::Restored => "restored",
            Mark::Normal => "normal",
        }
    }

    /// What happened at this mark, for a person reading the timeline.
    pub fn what(self) -> &'static str {
        match self {
            Mark::Prepared => "luoctl prepare: the state is prepared",
            Mark::Preserved => "the agent preserved the workload's memfd in a session",
            Mark::Ready => "the agent: every prepared hook succeeded; luoctl kexec goes on",
            Mark::Frozen => "the kexec reboot froze the state: blackout begins",
            Mark::FrozenSeen => "a watcher in the old kernel read frozen",
            Mark::Jump => "the old kernel jumps into the new one",
            Mark::NewKernel => "the new kernel's first console line",
            Mark::Init => "the new kernel starts init",
            Mark::ModuleReady => "the new kernel's luo read the handover: updated",
            Mark::UpdatedSeen => "a watcher read updated: blackout ends",
            Mark::Claimed => "the agent handed the workload its memfd back",
            Mark::Restored => {
                "the workload resumed (its memory checked, or its counter restarted from its \
                 checkpoint)"
            }
            Mark::Normal => "the agent finished the live update: normal",
        }
    }
}

/// When a mark was seen.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// The host's time of arrival.
    pub host: Instant,
    /// The guest's boot (0 for the first kernel) and its printk time, for console lines.
    pub guest: Option<(usize, Duration)>,
}

/// Who a span of the live update belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Our module's own code, measured in the kernel.
    Luo,
    /// The kernel: shutdown, the jump, boot.
    Kernel,
    /// The test harness: our guest init, the script, `insmod`, the watcher's start.
    Harness,
    /// The demo's agent: checkpoint, loading the next kernel, restore, `finish`.
    Agent,
}

impl Owner {
    fn word(self) -> &'static str {
        match self {
            Owner::Luo => "luo",
            Owner::Kernel => "kernel",
            Owner::Harness => "harness",
            Owner::Agent => "agent",
        }
    }
}

/// What the host saw of a live update.
#[derive(Default)]
pub struct Timeline {
    marks: Vec<(Mark, Seen)>,
    /// luo's freeze in the reboot notifier, as the module measured it.
    pub freeze: Option<Duration>,
    /// luo's init in the new kernel, to the state visible, as the module measured it.
    pub module_init: Option<Duration>,
    /// The workload's counter last seen in the old kernel (its checkpoint, in the standalone
    /// flavour).
    pub checkpointed: Option<u64>,
    /// Whether [`Timeline::checkpointed`] is a checkpoint, which the restart must start from
    /// exactly (the standalone counter's); else the last value seen of a counter that ran on.
    exact: bool,
    /// Where the restored workload started counting.
    pub restored: Option<u64>,
    /// The flavour luo's lines name.
    pub flavour: Option<Flavour>,
    /// The memory's check when the workload stamped it, and after the kexec.
    pub check_before: Option<u64>,
    /// The memory's check in the new kernel.
    pub check_after: Option<u64>,
    /// How much memory the workload kept (MiB).
    pub memory_mib: Option<u64>,
    /// Preserving the memfd (session created, pages pinned), as the agent measured it.
    pub preserve: Option<Duration>,
    /// Retrieving the memfd in the new kernel, as the agent measured it.
    pub claim: Option<Duration>,
    /// The state the script read at the end.
    pub final_state: Option<String>,
    /// The lines worth showing a person, with their arrival times.
    pub events: Vec<(Instant, String)>,
    /// The host's wall clock and monotonic clock at the same moment, to print wall times.
    pub origin: Option<(SystemTime, Instant)>,
    /// Kernels seen so far (a `Linux version` line starts one).
    boots: usize,
}

/// The printk time at the start of a console line (`[   12.345678] text`), and the text.
fn printk(line: &str) -> (Option<Duration>, &str) {
    let Some(rest) = line.strip_prefix('[') else {
        return (None, line);
    };
    let Some((stamp, text)) = rest.split_once("] ") else {
        return (None, line);
    };
    let time = stamp
        .trim()
        .parse::<f64>()
        .ok()
        .map(Duration::from_secs_f64);
    (time, text)
}

/// A time luo measured and logged, in microseconds.
fn micros(micros: i64) -> Option<Duration> {
    u64::try_from(micros).ok().map(Duration::from_micros)
}

impl Timeline {
    /// A timeline whose wall clock starts now.
    pub fn new() -> Self {
        Timeline {
            origin: Some((SystemTime::now(), Instant::now())),
            ..Timeline::default()
        }
    }

    /// When `mark` was first seen.
    pub fn at(&self, mark: Mark) -> Option<Seen> {
        self.marks.iter().find(|(m, _)| *m == mark).map(|(_, s)| *s)
    }

    fn mark(&mut self, mark: Mark, seen: Seen) {
        if self.at(mark).is_none() {
            self.marks.push((mark, seen));
        }
    }

    /// Takes in one line of the guest, seen by the host at `at`.
    pub fn see(&mut self, stream: Stream, line: &str, at: Instant) {
        let text = line.trim();
        let (stamp, console_text) = match stream {
            Stream::Console => printk(text),
            Stream::Stdout => (None, text),
        };
        if stream == Stream::Console && console_text.starts_with(console::LINUX_VERSION) {
            self.boots += 1;
        }
        let boot = self.boots.saturating_sub(1);
        let seen = Seen {
            host: at,
            guest: stamp.map(|time| (boot, time)),
        };
        // In the new kernel: after the jump's line, or from the second kernel's first line on
        // (the jump's line may be lost at the jump, see `proven`).
        let after_jump = self.at(Mark::Jump).is_some() || self.boots >= 2;
        let keep = match stream {
            Stream::Console => self.see_console(console_text, seen, after_jump),
            Stream::Stdout => self.see_stdout(text, seen, after_jump),
        };
        if keep && !text.is_empty() {
            self.events.push((at, console_text.to_owned()));
        }
    }

    /// Takes in one line of the script's output: luoctl's JSON records, the workloads'
    /// reports, the hooks' and the script's lines; whether it is worth keeping among the
    /// events.
    fn see_stdout(&mut self, text: &str, seen: Seen, after_jump: bool) -> bool {
        if let Some(record) = Record::parse(text) {
            return self.see_record(record, seen, after_jump);
        }
        if let Some(report) = Report::parse(text) {
            return self.see_report(report, seen, after_jump);
        }
        if let Some(state) = text.strip_prefix(lines::DEMO_FINAL_STATE) {
            self.final_state = Some(state.to_owned());
        }
        true
    }

    /// Takes in one of the workloads' reports; whether the line is worth keeping among the
    /// events (the counter's ticks are not).
    fn see_report(&mut self, report: Report<'_>, seen: Seen, after_jump: bool) -> bool {
        match report {
            Report::Checkpointed(value) => {
                self.checkpointed = Some(value);
                self.exact = true;
            }
            // The standalone counter's restart from its checkpoint (its start in the old
            // kernel, from 0, is no resumption).
            Report::Started(value) if after_jump => {
                self.mark(Mark::Restored, seen);
                self.restored = Some(value);
            }
            Report::CounterAt(value) => {
                if !after_jump {
                    self.checkpointed = Some(value);
                }
                return false;
            }
            Report::Restored {
                check, resumes_at, ..
            } => {
                self.mark(Mark::Restored, seen);
                self.restored = Some(resumes_at);
                self.check_after = Some(check);
            }
            Report::Stamped { mib, check, .. } => {
                self.memory_mib = Some(mib);
                self.check_before = Some(check);
            }
            _ => {}
        }
        true
    }

    /// Takes in the text of one console line (its printk time removed); whether the line is
    /// worth keeping among the events.
    fn see_console(&mut self, text: &str, seen: Seen, after_jump: bool) -> bool {
        if let Some(message) = Message::find(text) {
            self.see_luo(message, seen);
            return true;
        }
        if text.starts_with(console::LINUX_VERSION) && after_jump {
            self.mark(Mark::NewKernel, seen);
        } else if text.starts_with(console::KEXEC_JUMP) {
            self.mark(Mark::Jump, seen);
        } else if after_jump && text.starts_with("Run ") && text.ends_with(console::INIT_PROCESS) {
            self.mark(Mark::Init, seen);
            return false;
        } else {
            // Mainline's orchestrator logs under luo's prefix: worth showing, but not luo's.
            return text.starts_with(log::PREFIX);
        }
        true
    }

    /// Takes in one of luo's lines. The observer flavour's changes are marked like the
    /// standalone flavour's: the live update passes the same states.
    fn see_luo(&mut self, message: Message<'_>, seen: Seen) {
        if let Some(flavour) = message
            .switched()
            .map(|switched| switched.flavour)
            .or_else(|| message.ready().map(|ready| ready.flavour))
        {
            self.flavour = Some(flavour);
        }
        if let Some(switched) = message.switched() {
            let mark = match (switched.from, switched.to) {
                (State::Normal, State::Prepared) => Mark::Prepared,
                (State::Prepared, State::Frozen) => Mark::Frozen,
                (State::Updated, State::Normal) => Mark::Normal,
                _ => return,
            };
            self.mark(mark, seen);
        } else if let Some(ready) = message.ready() {
            if ready.state == State::Updated {
                self.mark(Mark::ModuleReady, seen);
                self.module_init = micros(ready.init_us);
            }
        } else if let Some(froze) = message.froze() {
            self.freeze = micros(froze.micros);
        }
    }

    /// Whether a mark whose line is missing is proven by a later one. The old kernel's last
    /// lines (the freeze, the jump) are printed as it goes down, and on a busy host the serial
    /// console sometimes loses them at the jump; the new kernel's luo coming up `updated` is
    /// only possible after both. Such a run has no blackout to measure, and says so.
    fn proven(&self, mark: Mark) -> bool {
        matches!(mark, Mark::Frozen | Mark::Jump)
            && self.at(Mark::NewKernel).is_some()
            && self.at(Mark::ModuleReady).is_some()
    }

    /// Takes in one of luoctl's JSON records: the states the watcher (and the agent) read,
    /// the agent's steps. The agent's records are not worth keeping among the events: its log
    /// lines say the same for a person.
    fn see_record(&mut self, record: Record, seen: Seen, after_jump: bool) -> bool {
        match record {
            Record::State { state } => match state.as_str() {
                "frozen" => self.mark(Mark::FrozenSeen, seen),
                "updated" if after_jump => self.mark(Mark::UpdatedSeen, seen),
                _ => {}
            },
            Record::Agent(AgentRecord::Ready) => {
                self.mark(Mark::Ready, seen);
                return false;
            }
            Record::Agent(AgentRecord::Session { event, duration_us }) => {
                let took = duration_us.map(Duration::from_micros);
                match event.as_str() {
                    "preserved" => {
                        self.mark(Mark::Preserved, seen);
                        self.preserve = took;
                    }
                    "claimed" => {
                        self.mark(Mark::Claimed, seen);
                        self.claim = took;
                    }
                    _ => {}
                }
                return false;
            }
            Record::Agent(AgentRecord::Other) => return false,
        }
        true
    }

    /// Checks that every step happened, in order, and that the workload resumed where it was
    /// with the memory it had.
    pub fn verify(&self) -> Result {
        let mut last: Option<(Mark, Instant)> = None;
        for mark in Mark::ALL {
            let Some(seen) = self.at(mark) else {
                if mark.optional() || self.proven(mark) {
                    continue;
                }
                return Err(format!("the guest never reached '{}'", mark.name()));
            };
            if !mark.ordered(self.flavour) {
                continue;
            }
            let at = seen.host;
            if let Some((before, then)) = last
                && at < then
            {
                return Err(format!("'{}' came before '{}'", mark.name(), before.name()));
            }
            last = Some((mark, at));
        }
        // The memory's counter runs on until the kexec stops it, past the last value printed;
        // a checkpoint is exact.
        match (self.checkpointed, self.restored) {
            (Some(before), Some(after)) if self.exact && after == before && before > 0 => {}
            (Some(before), Some(after)) if !self.exact && after >= before && before > 0 => {}
            (Some(before), Some(after)) if self.exact => {
                return Err(format!(
                    "the counter checkpointed {before} in the old kernel, but restarted from \
                     {after} in the new one"
                ));
            }
            (before, after) => {
                return Err(format!(
                    "the workload did not resume: last seen at {before:?}, resumed at {after:?}"
                ));
            }
        }
        // Unequal also when only one was seen: the memory was stamped but never checked again.
        if self.check_before != self.check_after {
            let shown =
                |check: Option<u64>| check.map_or("none".to_owned(), |c| format!("{c:016x}"));
            return Err(format!(
                "the memory changed across the kexec: check {} before, {} after",
                shown(self.check_before),
                shown(self.check_after)
            ));
        }
        match self.final_state.as_deref() {
            Some("normal") => Ok(()),
            other => Err(format!("the final state is {other:?}, expected 'normal'")),
        }
    }

    /// The length of `span` in this run, and the clock it was read on; `None` when the span
    /// is not of this run's flavour, an end was not seen, or the end came before the start.
    pub fn measure(&self, span: &Span) -> Option<(Duration, &'static str)> {
        if !span.applies_to(self.flavour) {
            return None;
        }
        match span.between {
            Between::Marks(from, to) => elapsed(self.at(from)?, self.at(to)?),
            Between::FromLater(first, second, to) => {
                let (first, second) = (self.at(first)?, self.at(second)?);
                let from = if elapsed(first, second).is_some() {
                    second
                } else {
                    first
                };
                elapsed(from, self.at(to)?)
            }
            Between::Freeze => self.freeze.map(|d| (d, "luo")),
            Between::Preserve => self.preserve.map(|d| (d, "agent")),
            Between::Claim => self.claim.map(|d| (d, "agent")),
            Between::ModuleInit => self.module_init.map(|d| (d, "luo")),
        }
    }
}

/// The time from `from` to `to`, and the clock it was read on: the guest's within one boot,
/// else the host's; `None` when `to` came first.
fn elapsed(from: Seen, to: Seen) -> Option<(Duration, &'static str)> {
    match (from.guest, to.guest) {
        (Some((a, t0)), Some((b, t1))) if a == b => t1.checked_sub(t0).map(|d| (d, "guest")),
        _ => to
            .host
            .checked_duration_since(from.host)
            .map(|d| (d, "host")),
    }
}

/// What a span measures.
#[derive(Clone, Copy, Debug)]
pub enum Between {
    /// From one mark to another.
    Marks(Mark, Mark),
    /// From the later of the first two marks to the third.
    FromLater(Mark, Mark, Mark),
    /// luo's freeze in the reboot notifier, measured by the module.
    Freeze,
    /// Preserving the memfd in a session, measured by the agent.
    Preserve,
    /// Retrieving the memfd in the new kernel, measured by the agent.
    Claim,
    /// luo's init to the state visible, measured by the module.
    ModuleInit,
}

/// One line of the breakdown.
#[derive(Debug)]
pub struct Span {
    /// What is measured.
    pub between: Between,
    /// Whose time it is.
    pub owner: Owner,
    /// What happens in it.
    pub what: &'static str,
    /// The flavour whose live update has this span; `None`: both.
    pub flavour: Option<Flavour>,
}

impl Span {
    /// Whether a live update of `flavour` has this span.
    fn applies_to(&self, flavour: Option<Flavour>) -> bool {
        self.flavour.is_none() || self.flavour == flavour
    }
}

const OBSERVER: Option<Flavour> = Some(Flavour::Observer);
const STANDALONE: Option<Flavour> = Some(Flavour::Standalone);

/// The breakdown, in order; the blackout is its own line after it. In the new kernel the
/// flavours differ: luo.ko (standalone) is ready after init, when the script loads it, and its
/// agent restores in its hooks while the script restarts the counter; luo built in (observer)
/// is ready before init, and the workload claims its memory back from the agent.
pub const SPANS: &[Span] = &[
    Span {
        between: Between::Preserve,
        owner: Owner::Kernel,
        what: "preservation: mainline pins the memfd's pages in a session (agent-measured)",
        flavour: OBSERVER,
    },
    Span {
        between: Between::Marks(Mark::Prepared, Mark::Ready),
        owner: Owner::Agent,
        what: "prepared until the agent's hooks all succeeded",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::Ready, Mark::Frozen),
        owner: Owner::Agent,
        what: "luoctl kexec: loads the next kernel and reboots, to the freeze",
        flavour: None,
    },
    FREEZE,
    Span {
        between: Between::Marks(Mark::Frozen, Mark::FrozenSeen),
        owner: Owner::Harness,
        what: "a watcher in the old kernel reads frozen",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::Frozen, Mark::Jump),
        owner: Owner::Kernel,
        what: "the old kernel shuts down to the jump",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::Jump, Mark::NewKernel),
        owner: Owner::Kernel,
        what: "the jump to the new kernel's first console line",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::NewKernel, Mark::Init),
        owner: Owner::Kernel,
        what: "the new kernel boots to init (TCG)",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::Init, Mark::ModuleReady),
        owner: Owner::Harness,
        what: "init, the script, insmod: to luo ready",
        flavour: STANDALONE,
    },
    MODULE_INIT,
    Span {
        between: Between::FromLater(Mark::Init, Mark::ModuleReady, Mark::UpdatedSeen),
        owner: Owner::Harness,
        what: "from init or luo ready, the later: a watcher in the new kernel reads updated",
        flavour: None,
    },
    Span {
        between: Between::Marks(Mark::UpdatedSeen, Mark::Restored),
        owner: Owner::Agent,
        what: "the workload restarts and resumes (claims and checks its memory)",
        flavour: OBSERVER,
    },
    Span {
        between: Between::Claim,
        owner: Owner::Kernel,
        what: "restore: mainline hands the memfd back (agent-measured)",
        flavour: OBSERVER,
    },
    Span {
        between: Between::Marks(Mark::Restored, Mark::Normal),
        owner: Owner::Agent,
        what: "the agent finishes: normal",
        flavour: OBSERVER,
    },
    Span {
        between: Between::Marks(Mark::UpdatedSeen, Mark::Normal),
        owner: Owner::Agent,
        what: "the agent's updated hooks read the checkpoint back, and it finishes: normal",
        flavour: STANDALONE,
    },
    Span {
        between: Between::Marks(Mark::UpdatedSeen, Mark::Restored),
        owner: Owner::Harness,
        what: "the script restarts the counter from its checkpoint",
        flavour: STANDALONE,
    },
];

/// luo's freeze, measured by the module.
pub const FREEZE: Span = Span {
    between: Between::Freeze,
    owner: Owner::Luo,
    what: "the freeze in the reboot notifier (state, handover record, notify)",
    // The observer flavour follows mainline's orchestrator, and has no freeze of its own.
    flavour: STANDALONE,
};

/// luo's init in the new kernel, measured by the module.
pub const MODULE_INIT: Span = Span {
    between: Between::ModuleInit,
    owner: Owner::Luo,
    what: "luo's init: the handover record read, the state visible",
    flavour: None,
};

/// The blackout: `frozen` until a watcher in the new kernel reads `updated`.
pub const BLACKOUT: Span = Span {
    between: Between::Marks(Mark::Frozen, Mark::UpdatedSeen),
    owner: Owner::Kernel,
    what: "blackout: frozen until a watcher reads updated",
    flavour: None,
};

/// A duration for a person: microseconds, milliseconds or seconds.
pub fn human(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} us", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// The numbers the test output reports: the blackout, and luo's own shares where measured
/// (the observer flavour has no freeze of its own), with the memory kept where there was one.
pub fn summary(timeline: &Timeline) -> String {
    let mut parts = vec![format!(
        "blackout {}",
        timeline
            .measure(&BLACKOUT)
            .map_or("?".to_owned(), |(d, _)| human(d))
    )];
    for (name, span) in [("luo's freeze", &FREEZE), ("luo's init", &MODULE_INIT)] {
        if let Some((d, _)) = timeline.measure(span) {
            parts.push(format!("{name} {}", human(d)));
        }
    }
    if let Some(mib) = timeline.memory_mib {
        parts.push(format!(
            "{mib} MiB kept, its check the same after the kexec"
        ));
    }
    parts.join(", ")
}

/// The breakdown over several runs: each span's median and range, with its owner.
pub fn report(runs: &[Timeline]) -> String {
    let mut out = String::new();
    let n = runs.len();
    out.push_str(&format!(
        "Live update breakdown over {n} run{} (median, min to max; clock: guest = printk time \
         within one boot, host = arrival at the host, luo = measured by the module)\n",
        if n == 1 { "" } else { "s" }
    ));
    // The spans of the runs' flavours only: the others are not "not seen", they do not exist.
    let spans = SPANS
        .iter()
        .chain(std::iter::once(&BLACKOUT))
        .filter(|span| runs.iter().any(|run| span.applies_to(run.flavour)));
    for span in spans {
        let mut values: Vec<Duration> = Vec::new();
        let mut clock = "";
        for run in runs {
            if let Some((d, c)) = run.measure(span) {
                values.push(d);
                clock = c;
            }
        }
        values.sort();
        let line = match (values.first(), values.last()) {
            (Some(min), Some(max)) => format!(
                "{:>10}  ({} to {}, {clock}, {}/{n} runs)",
                human(values[values.len() / 2]),
                human(*min),
                human(*max),
                values.len()
            ),
            _ => format!("{:>10}", "not seen"),
        };
        out.push_str(&format!(
            "  {:<8} {line}  {}\n",
            span.owner.word(),
            span.what
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printk_splits_the_stamp_from_the_text() {
        let (time, text) = printk("[   12.250953] luo: Ready in state [updated]");
        assert_eq!(time, Some(Duration::from_micros(12_250_953)));
        assert_eq!(text, "luo: Ready in state [updated]");
        assert_eq!(printk("plain"), (None, "plain"));
    }

    use luo_sysfs_abi::Flavour;
    use luo_sysfs_abi::log::{Froze, Line, Ready, Switched};

    /// `line` as the console shows it: the printk time, the prefix, the module's bytes.
    fn console(time: &str, line: Line<'_>) -> String {
        format!("[{time}] {}{line}", log::PREFIX)
    }

    #[test]
    fn luo_measurements_are_read_from_the_lines_the_module_prints() {
        let mut timeline = Timeline::new();
        let at = Instant::now();
        let froze = Line::Froze(Froze { micros: 37 });
        timeline.see(Stream::Console, &console("   5.1", froze), at);
        timeline.see(Stream::Console, "[ 0.0] Linux version 7.3.4", at);
        timeline.see(Stream::Console, "[ 0.1] Linux version 7.3.4", at);
        let ready = Line::Ready(Ready {
            flavour: Flavour::Observer,
            state: State::Updated,
            generation: 1,
            init_us: 412,
        });
        timeline.see(Stream::Console, &console("   0.9", ready), at);
        assert_eq!(timeline.freeze, Some(Duration::from_micros(37)));
        assert_eq!(timeline.module_init, Some(Duration::from_micros(412)));
        assert!(timeline.at(Mark::ModuleReady).is_some());
    }

    #[test]
    fn every_change_the_module_prints_marks_the_timeline_in_both_flavours() {
        for flavour in Flavour::ALL {
            let mut timeline = Timeline::new();
            let at = Instant::now();
            for (from, to, mark) in [
                (State::Normal, State::Prepared, Mark::Prepared),
                (State::Prepared, State::Frozen, Mark::Frozen),
                (State::Updated, State::Normal, Mark::Normal),
            ] {
                let line = Line::Switched(Switched { flavour, from, to });
                timeline.see(Stream::Console, &console("  26.4", line), at);
                assert!(timeline.at(mark).is_some(), "{flavour}: {mark:?}");
            }
        }
    }

    #[test]
    fn mainline_lines_under_luos_prefix_mark_nothing() {
        let mut timeline = Timeline::new();
        let at = Instant::now();
        for line in [
            "[ 0.5] luo: Retrieved live update data, liveupdate number: 1",
            "[ 0.6] luo: File count mismatch: expected 2, found 1",
        ] {
            timeline.see(Stream::Console, line, at);
        }
        assert!(Mark::ALL.iter().all(|mark| timeline.at(*mark).is_none()));
        assert_eq!(timeline.events.len(), 2, "shown, though not luo's");
    }

    #[test]
    fn the_observers_changes_mark_the_timeline_like_the_modules() {
        let mut timeline = Timeline::new();
        let at = Instant::now();
        timeline.see(
            Stream::Console,
            "[   26.4] luo: observer: Switched from [normal] to [prepared]",
            at,
        );
        assert!(timeline.at(Mark::Prepared).is_some());
    }

    #[test]
    fn the_new_kernel_coming_up_updated_proves_a_freeze_whose_line_was_lost() {
        let start = Instant::now();
        let mut timeline = Timeline::new();
        let at = |s: u64| start + Duration::from_secs(s);
        timeline.see(
            Stream::Console,
            "[ 1.0] luo: Switched from [normal] to [prepared]",
            at(1),
        );
        timeline.see(Stream::Console, "[ 0.0] Linux version 7.3.4", at(3));
        assert!(!timeline.proven(Mark::Frozen));
        timeline.see(Stream::Console, "[ 0.5] Linux version 7.3.4", at(4));
        timeline.see(
            Stream::Console,
            "[ 0.9] luo: Ready in state [updated] (live update generation 1) in 9 us",
            at(5),
        );
        // The second `Linux version` is the new kernel's, with or without the jump's line.
        assert!(timeline.at(Mark::NewKernel).is_some());
        assert!(timeline.proven(Mark::Frozen));
        assert!(timeline.proven(Mark::Jump));
        assert!(!timeline.proven(Mark::Normal));
    }

    #[test]
    fn a_whole_observer_cycle_from_the_producers_lines_verifies() {
        let start = Instant::now();
        let mut timeline = Timeline::new();
        let state = |prev: &str, state: &str| {
            format!(r#"{{"v":1,"time":"t","seq":1,"prev":"{prev}","state":"{state}"}}"#)
        };
        let switched = |from, to| {
            let line = Line::Switched(Switched {
                flavour: Flavour::Observer,
                from,
                to,
            });
            console("   9.0", line)
        };
        let ready = Line::Ready(Ready {
            flavour: Flavour::Observer,
            state: State::Updated,
            generation: 1,
            init_us: 3_000,
        });
        let stamped = Report::Stamped {
            mib: 256,
            millis: 900,
            check: 0x8f97,
        };
        let restored = Report::Restored {
            mib: 256,
            session: "workload",
            check: 0x8f97,
            millis: 700,
            resumes_at: 81,
        };
        let lines = [
            (Stream::Stdout, stamped.to_string()),
            (Stream::Stdout, Report::CounterAt(80).to_string()),
            (Stream::Console, switched(State::Normal, State::Prepared)),
            (
                Stream::Stdout,
                r#"{"v":1,"time":"t","record":"session","event":"preserved","session":"workload","files":1,"duration_us":4810}"#.to_owned(),
            ),
            (Stream::Stdout, r#"{"v":1,"time":"t","record":"ready","seq":1}"#.to_owned()),
            (Stream::Console, switched(State::Prepared, State::Frozen)),
            (Stream::Stdout, state("prepared", "frozen")),
            (Stream::Console, format!("[  10.0] {}", console::KEXEC_JUMP)),
            (Stream::Console, format!("[   0.0] {} 7.3.4", console::LINUX_VERSION)),
            (Stream::Console, console("   0.5", ready)),
            (Stream::Console, format!("[   1.0] Run /init{}", console::INIT_PROCESS)),
            (Stream::Stdout, state("-", "updated")),
            (Stream::Stdout, restored.to_string()),
            (Stream::Console, switched(State::Updated, State::Normal)),
            (Stream::Stdout, format!("{}normal", lines::DEMO_FINAL_STATE)),
        ];
        for (i, (stream, line)) in lines.iter().enumerate() {
            timeline.see(*stream, line, start + Duration::from_millis(i as u64));
        }
        timeline.verify().unwrap();
        assert_eq!(timeline.preserve, Some(Duration::from_micros(4810)));
        assert_eq!(timeline.module_init, Some(Duration::from_millis(3)));
        assert_eq!(timeline.memory_mib, Some(256));
        assert_eq!(
            (timeline.checkpointed, timeline.restored),
            (Some(80), Some(81))
        );
        // luo built in is ready before init: the harness's span starts at init, and the
        // spans of luo.ko's flavour (insmod after init, the counter's checkpoint) are none.
        let harness = span_of("from init or luo ready");
        assert_eq!(
            timeline.measure(harness),
            Some((Duration::from_millis(1), "host")),
            "init (line 10) to updated seen (line 11)"
        );
        assert_eq!(timeline.measure(span_of("insmod: to luo ready")), None);
        let report = report(std::slice::from_ref(&timeline));
        assert!(!report.contains("insmod"), "{report}");
        assert!(
            !report.contains("the counter from its checkpoint"),
            "{report}"
        );
        assert!(report.contains("mainline hands the memfd back"), "{report}");
    }

    /// The span of [`SPANS`] whose text contains `what`.
    fn span_of(what: &str) -> &'static Span {
        SPANS.iter().find(|span| span.what.contains(what)).unwrap()
    }

    /// A standalone cycle's lines: the counter checkpointed 41 in the old kernel, restarted
    /// from `restarted` in the new one, after the agent's finish.
    fn standalone_cycle(restarted: u64) -> Timeline {
        let start = Instant::now();
        let mut timeline = Timeline::new();
        let switched = |time, from, to| {
            let line = Line::Switched(Switched {
                flavour: Flavour::Standalone,
                from,
                to,
            });
            console(time, line)
        };
        let ready = Line::Ready(Ready {
            flavour: Flavour::Standalone,
            state: State::Updated,
            generation: 1,
            init_us: 700,
        });
        let lines = [
            (Stream::Stdout, Report::Started(0).to_string()),
            (
                Stream::Console,
                switched("   9.0", State::Normal, State::Prepared),
            ),
            (Stream::Stdout, Report::Checkpointed(41).to_string()),
            (
                Stream::Stdout,
                r#"{"v":1,"time":"t","record":"ready","seq":1}"#.to_owned(),
            ),
            (
                Stream::Console,
                switched("  10.0", State::Prepared, State::Frozen),
            ),
            (
                Stream::Console,
                console("  10.1", Line::Froze(Froze { micros: 40 })),
            ),
            (Stream::Console, format!("[  10.2] {}", console::KEXEC_JUMP)),
            (
                Stream::Console,
                format!("[   0.0] {} 7.3.4", console::LINUX_VERSION),
            ),
            (
                Stream::Console,
                format!("[   1.0] Run /init{}", console::INIT_PROCESS),
            ),
            (Stream::Console, console("   1.5", ready)),
            (
                Stream::Stdout,
                r#"{"v":1,"time":"t","seq":1,"prev":"-","state":"updated"}"#.to_owned(),
            ),
            (Stream::Stdout, format!("{}41", lines::RESTORE_FOUND)),
            (
                Stream::Console,
                switched("   2.0", State::Updated, State::Normal),
            ),
            (Stream::Stdout, Report::Started(restarted).to_string()),
            (Stream::Stdout, format!("{}normal", lines::DEMO_FINAL_STATE)),
        ];
        for (i, (stream, line)) in lines.iter().enumerate() {
            timeline.see(*stream, line, start + Duration::from_millis(i as u64));
        }
        timeline
    }

    #[test]
    fn the_standalone_counter_restarts_from_its_checkpoint_exactly() {
        let timeline = standalone_cycle(41);
        timeline.verify().unwrap();
        assert_eq!(
            (timeline.checkpointed, timeline.restored),
            (Some(41), Some(41))
        );
        // Its restart is the mark, not the hook's reading of the checkpoint; it came after
        // the finish, which is no disorder in this flavour.
        let finished = timeline.at(Mark::Normal).unwrap().host;
        assert!(timeline.at(Mark::Restored).unwrap().host > finished);
        let err = standalone_cycle(42).verify().unwrap_err();
        assert!(
            err.contains("checkpointed 41 in the old kernel, but restarted from 42"),
            "{err}"
        );
    }

    #[test]
    fn the_standalone_spans_start_after_insmod_and_none_is_negative() {
        let timeline = standalone_cycle(41);
        assert_eq!(
            timeline.measure(span_of("insmod: to luo ready")),
            Some((Duration::from_millis(500), "guest"))
        );
        // From luo ready (1.5 s), the later of the two, to updated seen (on the host clock).
        assert_eq!(
            timeline.measure(span_of("from init or luo ready")),
            Some((Duration::from_millis(1), "host"))
        );
        assert_eq!(
            timeline.measure(&FREEZE),
            Some((Duration::from_micros(40), "luo"))
        );
        // Neither of the observer's spans: the counter restarted after the finish.
        assert_eq!(
            timeline.measure(span_of("the agent finishes: normal")),
            None
        );
        let restart = span_of("the counter from its checkpoint");
        assert_eq!(
            timeline.measure(restart),
            Some((Duration::from_millis(3), "host"))
        );
        let backwards = Span {
            between: Between::Marks(Mark::Restored, Mark::Normal),
            owner: Owner::Agent,
            what: "",
            flavour: None,
        };
        assert_eq!(timeline.measure(&backwards), None, "the end came first");
    }

    #[test]
    fn spans_within_one_boot_use_the_guest_clock_and_others_the_host() {
        let start = Instant::now();
        let mut timeline = Timeline::new();
        let lines = [
            "[    1.000000] Linux version 7.3.4",
            "[    5.000000] luo: Switched from [prepared] to [frozen]",
            "[    5.100000] kexec_core: Starting new kernel",
            "[    0.000000] Linux version 7.3.4",
            "[    3.000000] Run /init as init process",
        ];
        for (i, line) in lines.into_iter().enumerate() {
            let at = start + Duration::from_secs(i as u64 * 10);
            timeline.see(Stream::Console, line, at);
        }
        let span = |from, to| Span {
            between: Between::Marks(from, to),
            owner: Owner::Kernel,
            what: "",
            flavour: None,
        };
        let shutdown = timeline.measure(&span(Mark::Frozen, Mark::Jump)).unwrap();
        assert_eq!(shutdown, (Duration::from_millis(100), "guest"));
        let jump = timeline
            .measure(&span(Mark::Jump, Mark::NewKernel))
            .unwrap();
        assert_eq!(jump, (Duration::from_secs(10), "host"));
        let boot = timeline
            .measure(&span(Mark::NewKernel, Mark::Init))
            .unwrap();
        assert_eq!(boot, (Duration::from_secs(3), "guest"));
    }
}
