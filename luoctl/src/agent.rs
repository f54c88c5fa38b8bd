//! `luoctl agent`: the library's hooks agent, with its events as log lines on stderr, the
//! states it acts on as records on stdout (and, with `--json`, how each hook, retry, cancel
//! and finish ended), and systemd's readiness protocol.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, SystemTime};

use std::sync::Arc;

use luo_user::agent::{Agent, AgentEvent, Delivery};
use luo_user::hooks::{HooksDir, Outcome, Stop, failure};
use luo_user::keeper::{Keeper, KeeperEvent, Listener};
use luo_user::{Flavour, Snapshot, State, StateFile};

use crate::cli::AgentArgs;
use crate::exit::Failure;
use crate::json::Object;
use crate::notify::Notifier;
use crate::record::{Record, Style};
use crate::signals;

/// Runs the agent until `args.count` states were acted on, or an error.
pub fn run(args: &AgentArgs) -> Result<(), Failure> {
    // Before any hook, and before any thread: the signals must be blocked in every thread.
    let stop = Stop::new()?;
    signals::stop_on_termination(stop.clone())?;
    // Opened once: a missing, unreadable or untrusted tree stops the agent here.
    let hooks = HooksDir::open(&args.hooks_dir).map_err(Failure::Hooks)?;
    let agent = Agent::new(hooks)
        .stop(stop)
        .device(&args.device.device)
        .generation_file(&args.generation.generation_file)
        .hook_timeout(args.hook_timeout.into())
        .finish(!args.no_finish)
        .initial(args.output.initial)
        .follow(args.output.follow);
    let log = Log::new(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let style = Style::new(args.output.json, args.output.format.as_deref());
    // Bound before the first hook runs, so `luoctl kexec` finds it; dropped (and its path
    // removed) when the agent returns.
    let (agent, _listener, keeper) = if args.no_socket {
        (agent, None, None)
    } else {
        let (keeper, listener) = listen(args, log, style == Style::Json)?;
        (agent.keeper(keeper.clone()), Some(listener), Some(keeper))
    };
    let mut follower = args.state.follower();
    let notifier = match Notifier::from_env() {
        Some(Ok(notifier)) => Some(notifier),
        Some(Err(err)) => {
            log.line(format_args!(
                "cannot use NOTIFY_SOCKET: {err}; not notifying systemd"
            ));
            None
        }
        None => None,
    };
    let mut output: io::Result<()> = Ok(());
    let path = args.state.state_file.as_path();
    let summary = agent.run(&mut follower, args.count, |event| {
        // A `luoctl kexec` waiting for a `prepared` the agent has not acted on yet does not
        // count the time the agent spends in hooks (they run one at a time) as missed.
        if let Some(keeper) = &keeper {
            match event {
                AgentEvent::HookStarted { .. } => keeper.hook_running(true),
                AgentEvent::HookEnded { .. } => keeper.hook_running(false),
                _ => {}
            }
        }
        if output.is_ok() {
            output = match event {
                AgentEvent::State {
                    state,
                    prev,
                    seq,
                    time,
                    transitions,
                } => style.write(
                    &mut io::stdout().lock(),
                    &Record {
                        time,
                        seq,
                        prev,
                        state,
                        path,
                        transitions,
                    },
                ),
                // The other records only in JSON: a text line or a template is per state.
                _ if style == Style::Json => match outcome_record(&event, SystemTime::now()) {
                    Some(object) => write_line(&object),
                    None => Ok(()),
                },
                _ => Ok(()),
            };
        }
        if let (Some(notifier), Some(message)) = (&notifier, notification(&event)) {
            if let Err(err) = notifier.send(&message) {
                // One line in the log: the message's assignments are separated by newlines.
                let message = message.replace('\n', "; ");
                log.line(format_args!("cannot notify systemd ({message}): {err}"));
            }
        }
        log.event(&event, &args.hooks_dir, args.quiet.quiet);
    })?;
    output?;
    if summary.is_clean() {
        Ok(())
    } else {
        Err(Failure::Agent(summary))
    }
}

/// Listens on the agent's socket, with mainline's sessions in the observer flavour.
fn listen(args: &AgentArgs, log: Log, json: bool) -> Result<(Arc<Keeper>, Listener), Failure> {
    let sessions = luo_user::flavour_beside(&args.state.state_file) == Some(Flavour::Observer);
    let keeper = Arc::new(Keeper::new(&args.device.device, sessions));
    let listener = Listener::bind(&args.socket.socket).map_err(Failure::Socket)?;
    let state_file = args.state.state_file.clone();
    // The count with the state, read exactly (see `Snapshot`); the state alone from a module
    // older than the counter, and only then: with a counter that cannot be read now, the
    // state alone would let the mark of an earlier `prepared` pass for this one, so the
    // answer is "cannot tell".
    let current = move || match Snapshot::read_beside(&state_file) {
        Ok(snapshot) => Some((snapshot.state, Some(snapshot.transitions))),
        Err(luo_user::Error::NoTransitions { .. }) => {
            Some((StateFile::open(&state_file).ok()?.state().ok()?, None))
        }
        Err(_) => None,
    };
    let report = move |event: KeeperEvent<'_>| {
        if json {
            if let Some(object) = keeper_record(&event, SystemTime::now()) {
                // The main thread's records are whole lines too: stdout's lock keeps them apart.
                let _ = write_line(&object);
            }
        }
        log.keeper(&event);
    };
    listener.serve(keeper.clone(), Arc::new(current), Arc::new(report))?;
    if !args.quiet.quiet {
        log.line(format_args!(
            "listening at {} ({})",
            listener.path().display(),
            if sessions {
                "observer flavour: workloads may hand over files to keep across the kexec"
            } else {
                "standalone flavour: for 'luoctl kexec' to wait for the prepared hooks"
            }
        ));
    }
    Ok((keeper, listener))
}

/// The JSON record of what the keeper did.
fn keeper_record(event: &KeeperEvent<'_>, now: SystemTime) -> Option<Object> {
    let record = |what: &str| {
        Object::new()
            .str("time", &humantime::format_rfc3339_micros(now).to_string())
            .str("record", "session")
            .str("event", what)
    };
    Some(match event {
        KeeperEvent::Kept { name, count, pid } => record("kept")
            .str("session", name)
            .num("files", count)
            .num("pid", pid),
        KeeperEvent::Dropped { name } => record("dropped").str("session", name),
        KeeperEvent::Departed { name } => record("departed").str("session", name),
        KeeperEvent::Preserved { name, count, took } => record("preserved")
            .str("session", name)
            .num("files", count)
            .num("duration_us", took.as_micros()),
        KeeperEvent::Unpreserved { sessions } => record("unpreserved").num("sessions", sessions),
        KeeperEvent::Claimed {
            name,
            count,
            pid,
            took,
        } => record("claimed")
            .str("session", name)
            .num("files", count)
            .num("pid", pid)
            .num("duration_us", took.as_micros()),
        KeeperEvent::Finished { name } => record("finished").str("session", name),
        KeeperEvent::FinishFailed { name, error } => record("finish_failed")
            .str("session", name)
            .str("error", &error.to_string()),
        KeeperEvent::Refused { pid, reason } => {
            record("refused").num("pid", pid).str("error", reason)
        }
        _ => return None,
    })
}

fn write_line(object: &Object) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{object}")?;
    out.flush()
}

/// The JSON record of how a hook, a retry, a cancel or a finish ended, if `event` is one.
fn outcome_record(event: &AgentEvent<'_>, now: SystemTime) -> Option<Object> {
    let record = |kind: &str| {
        Object::new()
            .str("time", &humantime::format_rfc3339_micros(now).to_string())
            .str("record", kind)
    };
    Some(match event {
        AgentEvent::HookEnded {
            hook,
            outcome,
            elapsed,
        } => hook_outcome(record("hook").str("hook", &hook.name), outcome)
            .num("duration_ms", millis(*elapsed)),
        AgentEvent::Unreadable { dir, error } => record("hook")
            .str("dir", &dir.to_string_lossy())
            .str("result", "unreadable")
            .str("error", &error.to_string()),
        AgentEvent::Refused { error } => record("hook")
            .str("result", "refused")
            .str("error", &error.to_string()),
        AgentEvent::Retrying(retrying) => record("retry")
            .str("event", retrying.event.word())
            .num("attempt", retrying.attempt)
            .num("delay_ms", millis(retrying.delay))
            .str("error", &retrying.error.to_string()),
        AgentEvent::Cancelled { hook, result } => {
            delivery(record("cancel"), result).opt_str("because", hook.map(|h| h.name.as_str()))
        }
        AgentEvent::Finished { result } => delivery(record("finish"), result),
        AgentEvent::FinishWithheld { hook } => record("finish")
            .str("result", "withheld")
            .opt_str("because", hook.map(|h| h.name.as_str())),
        AgentEvent::FinishLeft => record("finish").str("result", "left"),
        AgentEvent::Missed { missed, from, to } => record("missed")
            .num("missed", missed)
            .str("from", from.word())
            .str("to", to.word()),
        AgentEvent::Ready { mark } => record("ready")
            .num("seq", mark.seq)
            .opt_num("transitions", mark.transitions),
        AgentEvent::Unpreserved { hook, sessions } => record("cancel")
            .str("result", "unpreserved")
            .num("sessions", sessions)
            .opt_str("because", hook.map(|h| h.name.as_str())),
        AgentEvent::SessionsFinished { finished, waiting } => record("finish")
            .str("result", "sessions")
            .num(
                "finished",
                finished.iter().filter(|(_, r)| r.is_ok()).count(),
            )
            .num(
                "failed",
                finished.iter().filter(|(_, r)| r.is_err()).count(),
            )
            .num("waiting", waiting),
        _ => return None,
    })
}

/// `"result"` and what goes with it: the exit status or signal of a failed hook, the time
/// limit of one that timed out, the error of one that could not start.
fn hook_outcome(object: Object, outcome: &Outcome) -> Object {
    match outcome {
        Outcome::Succeeded => object.str("result", "succeeded"),
        Outcome::Failed(status) => {
            let object = object.str("result", "failed");
            match (status.code(), status.signal()) {
                (Some(code), _) => object.num("exit_status", code),
                (None, Some(signal)) => object.num("signal", signal),
                (None, None) => object,
            }
        }
        Outcome::TimedOut(limit) => object
            .str("result", "timed_out")
            .num("limit_ms", millis(*limit)),
        Outcome::Stopped => object.str("result", "stopped"),
        Outcome::Unstoppable { left } => object.str("result", "unstoppable").num("left", left),
        Outcome::NotStarted(err) => object
            .str("result", "not_started")
            .str("error", &err.to_string()),
        _ => object.str("result", "failed"),
    }
}

/// `"result"` of a cancel or finish, with the tries made and the state reached or the error.
fn delivery(object: Object, delivery: &Delivery) -> Object {
    match delivery {
        Delivery::Sent { state, attempts } => object
            .str("result", "sent")
            .num("attempts", attempts)
            .str("now", state.word()),
        Delivery::NotNeeded { state, attempts } => object
            .str("result", "not_needed")
            .num("attempts", attempts)
            .str("now", state.word()),
        Delivery::Refused { error, attempts } => object
            .str("result", "refused")
            .num("attempts", attempts)
            .str("error", &error.to_string()),
        Delivery::GaveUp { error, attempts } => object
            .str("result", "gave_up")
            .num("attempts", attempts)
            .str("error", &error.to_string()),
        _ => object.str("result", "unknown"),
    }
}

fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

/// What systemd hears of an event, if anything: `READY=1` after the first read, `STATUS=`
/// after each state.
fn notification(event: &AgentEvent<'_>) -> Option<String> {
    match event {
        AgentEvent::Attached {
            state, first: true, ..
        } => Some(format!("READY=1\nSTATUS=state {state}")),
        AgentEvent::Attached { state, .. } => Some(format!("STATUS=state {state}")),
        AgentEvent::Detached { .. } => Some("STATUS=waiting for the state file".to_owned()),
        AgentEvent::State { state, .. } => Some(format!("STATUS=state {state}")),
        _ => None,
    }
}

/// The agent's log on stderr: one flushed line per event, coloured only on a terminal.
#[derive(Clone, Copy)]
struct Log {
    colour: bool,
}

impl Log {
    fn new(colour: bool) -> Self {
        Log { colour }
    }

    /// Writes `text` as one line: a newline inside (an error message, a path) is shown as
    /// `\n`, so each line is one event for the journal and for `grep`.
    fn line(&self, text: fmt::Arguments<'_>) {
        // One write: stderr is unbuffered, and `writeln!` writes each piece on its own, so
        // another process's line on the same pipe (a journal, a console) could land inside.
        let line = format!("luoctl agent: {}\n", one_line(&text.to_string()));
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    /// `text` in red on a terminal, as it is elsewhere.
    fn bad<'a>(&self, text: &'a str) -> Painted<'a> {
        Painted {
            text,
            colour: self.colour.then_some("31"),
        }
    }

    fn event(&self, event: &AgentEvent<'_>, hooks_dir: &std::path::Path, quiet: bool) {
        match event {
            AgentEvent::Attached {
                path,
                state,
                first: true,
            } if !quiet => self.line(format_args!(
                "watching {} (state: {state}); hooks in {}",
                path.display(),
                hooks_dir.display()
            )),
            AgentEvent::Attached { first: true, .. } => {}
            AgentEvent::Attached { path, state, .. } => self.line(format_args!(
                "{} is back (state: {state}); watching again",
                path.display()
            )),
            AgentEvent::Detached { error } => self.line(format_args!(
                "{error}; waiting for it to come back (--follow)"
            )),
            AgentEvent::State {
                state,
                prev: Some(prev),
                ..
            } => self.line(format_args!("state {state} (was {prev})")),
            AgentEvent::State { state, .. } => self.line(format_args!("state {state} at start")),
            AgentEvent::Missed { missed, from, to } => self.line(format_args!(
                "{}: {missed} change(s) between {from} and {to} came between two reads (they \
                 coalesce); the hooks of the states in between did not run, and cannot now{}",
                self.bad("missed"),
                if from == to && *to == State::Normal {
                    ": a live update was prepared and ended meanwhile"
                } else {
                    ""
                }
            )),
            AgentEvent::Skipped { path, reason } => self.line(format_args!(
                "skipping {}: {reason} (chmod +x it to run it)",
                path.display()
            )),
            AgentEvent::Unreadable { dir, error } => self.line(format_args!(
                "cannot read {}: {error}; {}",
                dir.display(),
                self.bad("counts as a failed hook")
            )),
            AgentEvent::Refused { error } => self.line(format_args!(
                "refusing {error}; {}",
                self.bad("counts as a failed hook")
            )),
            AgentEvent::HookStarted { hook } => self.line(format_args!("running {}", hook.name)),
            AgentEvent::HookEnded {
                hook,
                outcome,
                elapsed,
            } => {
                let took = humantime::format_duration(round_ms(*elapsed));
                if outcome.is_success() {
                    self.line(format_args!("{} succeeded in {took}", hook.name));
                } else {
                    let text = outcome.to_string();
                    self.line(format_args!("{} {} in {took}", hook.name, self.bad(&text)));
                }
            }
            AgentEvent::Retrying(retrying) => self.line(format_args!(
                "{} could not be sent (try {}): {}; trying again in {}",
                retrying.event.word(),
                retrying.attempt,
                retrying.error,
                humantime::format_duration(round_ms(retrying.delay))
            )),
            AgentEvent::Cancelled { hook, result } => {
                let why = failure(*hook, "prepared");
                match result {
                    Delivery::Sent { state, attempts } => self.line(format_args!(
                        "{}: sent cancel because {why}{}; state {state}",
                        self.bad("live update cancelled"),
                        tries(*attempts)
                    )),
                    Delivery::NotNeeded { state, attempts } => self.line(format_args!(
                        "{}: {why}; cancel was not sent{}, but the state is now {state}",
                        self.bad("live update abandoned"),
                        tries(*attempts)
                    )),
                    Delivery::Refused { error, attempts } => self.line(format_args!(
                        "{why}, but cancel was refused{}: {error}",
                        tries(*attempts)
                    )),
                    Delivery::GaveUp { error, attempts } => self.line(format_args!(
                        "{why}, but cancel could not be sent{}: {error}; {}",
                        tries(*attempts),
                        self.bad("gave up: send it by hand ('luoctl cancel')")
                    )),
                    _ => {}
                }
            }
            AgentEvent::FinishWithheld { hook } => {
                let why = failure(*hook, "updated");
                self.line(format_args!(
                    "{}: {why}; the state stays updated: fix it, then run 'luoctl finish'",
                    self.bad("no finish")
                ));
            }
            AgentEvent::Finished { result } => match result {
                Delivery::Sent { state, attempts } => self.line(format_args!(
                    "every updated hook succeeded: sent finish{}; state {state}",
                    tries(*attempts)
                )),
                Delivery::NotNeeded { state, attempts } => self.line(format_args!(
                    "every updated hook succeeded; finish was not sent{}, but the state is now \
                     {state}",
                    tries(*attempts)
                )),
                Delivery::Refused { error, attempts } => self.line(format_args!(
                    "every updated hook succeeded, but finish was refused{}: {error}",
                    tries(*attempts)
                )),
                Delivery::GaveUp { error, attempts } => self.line(format_args!(
                    "every updated hook succeeded, but finish could not be sent{}: {error}; {}",
                    tries(*attempts),
                    self.bad("gave up: send it by hand ('luoctl finish')")
                )),
                _ => {}
            },
            AgentEvent::FinishLeft => self.line(format_args!(
                "every updated hook succeeded; not sending finish (--no-finish)"
            )),
            AgentEvent::Ready { mark } => {
                let at = mark
                    .transitions
                    .map_or_else(String::new, |n| format!(" (transition {n})"));
                self.line(format_args!(
                    "every prepared hook succeeded: ready for the kexec{at}"
                ));
            }
            AgentEvent::Unpreserved { hook, sessions } => self.line(format_args!(
                "{}: {}; closed {sessions} session(s), so their files are no longer preserved",
                self.bad("live update cancelled"),
                failure(*hook, "prepared")
            )),
            AgentEvent::SessionsFinished { finished, waiting } => {
                for line in self.sessions_finished(finished, *waiting) {
                    self.line(format_args!("{line}"));
                }
            }
            _ => {}
        }
    }

    /// The lines for the sessions finished after the updated hooks: each failed finish, as
    /// the keeper's log says it, then the counts.
    fn sessions_finished(
        &self,
        finished: &[(String, Result<(), luo_user::session::SessionError>)],
        waiting: usize,
    ) -> Vec<String> {
        let mut lines: Vec<String> = finished
            .iter()
            .filter_map(|(name, result)| {
                let error = result.as_ref().err()?;
                Some(format!(
                    "session {name}: {}: {error}",
                    self.bad("finish failed")
                ))
            })
            .collect();
        let done = finished.len() - lines.len();
        let failed = if lines.is_empty() {
            String::new()
        } else {
            format!(
                "; {} finish(es) {} and stay open ('luoctl finish' tries again)",
                lines.len(),
                self.bad("failed")
            )
        };
        lines.push(format!(
            "every updated hook succeeded: finished {done} restored session(s){failed}; \
             {waiting} claimed session(s) wait for their workload's restore"
        ));
        lines
    }

    fn keeper(&self, event: &KeeperEvent<'_>) {
        match event {
            KeeperEvent::Kept { name, count, pid } => self.line(format_args!(
                "keeping {count} file(s) of pid {pid} for session {name}"
            )),
            KeeperEvent::Dropped { name } => self.line(format_args!(
                "the workload of session {name} went away before the prepare: its files are let go"
            )),
            KeeperEvent::Departed { name } => self.line(format_args!(
                "the workload of session {name} went away; its session stays, preserved for the \
                 kexec"
            )),
            KeeperEvent::Preserved { name, count, took } => self.line(format_args!(
                "session {name}: {count} file(s) preserved for the kexec in {}",
                humantime::format_duration(round_ms(*took))
            )),
            KeeperEvent::Unpreserved { sessions } => {
                self.line(format_args!("closed {sessions} outgoing session(s)"))
            }
            KeeperEvent::Claimed {
                name,
                count,
                pid,
                took,
            } => self.line(format_args!(
                "session {name}: handed {count} file(s) back to pid {pid} (retrieved in {})",
                humantime::format_duration(round_ms(*took))
            )),
            KeeperEvent::Finished { name } => {
                self.line(format_args!("session {name}: finished"));
            }
            KeeperEvent::FinishFailed { name, error } => self.line(format_args!(
                "session {name}: {}: {error}",
                self.bad("finish failed")
            )),
            KeeperEvent::Refused { pid, reason } => {
                self.line(format_args!("refused a request of pid {pid}: {reason}"));
            }
            _ => {}
        }
    }
}

/// How many tries it took, as a clause, when more than one.
fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} tries")
    } else {
        String::new()
    }
}

/// `text` with its line breaks escaped.
fn one_line(text: &str) -> String {
    text.replace('\r', "\\r").replace('\n', "\\n")
}

/// Durations in logs: milliseconds are enough.
fn round_ms(elapsed: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// Text with an optional SGR colour.
struct Painted<'a> {
    text: &'a str,
    colour: Option<&'static str>,
}

impl fmt::Display for Painted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.colour {
            Some(code) => write!(f, "\x1b[{code}m{}\x1b[0m", self.text),
            None => f.write_str(self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use luo_user::State;

    use super::*;

    #[test]
    fn ready_is_sent_after_the_first_read_only() {
        let path = std::path::Path::new("/x");
        let first = notification(&AgentEvent::Attached {
            path,
            state: State::Normal,
            first: true,
        });
        assert_eq!(first.as_deref(), Some("READY=1\nSTATUS=state normal"));
        let again = notification(&AgentEvent::Attached {
            path,
            state: State::Normal,
            first: false,
        });
        assert_eq!(again.as_deref(), Some("STATUS=state normal"));
    }

    #[test]
    fn a_failed_session_finish_is_logged_and_counted_apart() {
        let log = Log::new(false);
        let error = || luo_user::session::SessionError::Off {
            path: "/dev/liveupdate".into(),
        };
        let finished = [("vm".to_owned(), Ok(())), ("db".to_owned(), Err(error()))];
        let lines = log.sessions_finished(&finished, 1);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], format!("session db: finish failed: {}", error()));
        assert_eq!(
            lines[1],
            "every updated hook succeeded: finished 1 restored session(s); 1 finish(es) failed \
             and stay open ('luoctl finish' tries again); 1 claimed session(s) wait for their \
             workload's restore"
        );
    }

    #[test]
    fn no_colour_means_no_escape_codes() {
        let log = Log::new(false);
        assert_eq!(log.bad("failed").to_string(), "failed");
        let log = Log::new(true);
        assert_eq!(log.bad("failed").to_string(), "\x1b[31mfailed\x1b[0m");
    }
}
