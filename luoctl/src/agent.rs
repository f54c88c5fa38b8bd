//! `luoctl agent`: the library's hooks agent, with its events as log lines on stderr, the
//! states it acts on as records on stdout, and systemd's readiness protocol.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use luo_user::agent::{Agent, AgentEvent};
use luo_user::hooks::{HooksDir, Stop};
use luo_user::{Follower, State};

use crate::cli::{AgentArgs, Cli};
use crate::exit::Failure;
use crate::notify::Notifier;
use crate::record::{Record, Style};
use crate::signals;

/// Runs the agent until `args.count` states were acted on, or an error.
pub fn run(cli: &Cli, args: &AgentArgs) -> Result<(), Failure> {
    // Before any hook, and before any thread: the signals must be blocked in every thread.
    let stop = Stop::new()?;
    signals::stop_on_termination(stop.clone())?;
    // Opened once: a missing, unreadable or untrusted tree stops the agent here.
    let hooks = HooksDir::open(&args.hooks_dir).map_err(Failure::Hooks)?;
    let agent = Agent::new(hooks)
        .stop(stop)
        .device(&cli.device)
        .generation_file(&cli.generation_file)
        .hook_timeout(args.hook_timeout.into())
        .finish(!args.no_finish)
        .initial(args.output.initial)
        .follow(args.output.follow);
    let mut follower = Follower::<State>::new(&cli.state_file).with_interval(cli.interval.into());
    let log = Log::new(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
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
    let style = Style::new(args.output.json, args.output.format.as_deref());
    let mut output: io::Result<()> = Ok(());
    let path = cli.state_file.as_path();
    agent.run(&mut follower, args.count, |event| {
        if let AgentEvent::State {
            state,
            prev,
            seq,
            time,
        } = event
        {
            let record = Record {
                time,
                seq,
                prev,
                state,
                path,
            };
            if output.is_ok() {
                output = style.write(&mut io::stdout().lock(), &record);
            }
        }
        if let (Some(notifier), Some(message)) = (&notifier, notification(&event)) {
            if let Err(err) = notifier.send(&message) {
                // One line in the log: the message's assignments are separated by newlines.
                let message = message.replace('\n', "; ");
                log.line(format_args!("cannot notify systemd ({message}): {err}"));
            }
        }
        log.event(&event, &args.hooks_dir, cli.quiet);
    })?;
    output.map_err(Failure::from)
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
struct Log {
    colour: bool,
}

impl Log {
    fn new(colour: bool) -> Self {
        Log { colour }
    }

    fn line(&self, text: fmt::Arguments<'_>) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "luoctl agent: {text}");
        let _ = err.flush();
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
            AgentEvent::Cancelled { hook, result } => {
                let why = hook.map_or("the prepared hooks could not be run".to_owned(), |h| {
                    format!("{} failed", h.name)
                });
                match result {
                    Ok(state) => self.line(format_args!(
                        "{}: sent cancel because {why}; state {state}",
                        self.bad("live update cancelled")
                    )),
                    Err(err) => {
                        self.line(format_args!("{why}, but cancel could not be sent: {err}"))
                    }
                }
            }
            AgentEvent::FinishWithheld { hook } => {
                let why = hook.map_or("the updated hooks could not be run".to_owned(), |h| {
                    format!("{} failed", h.name)
                });
                self.line(format_args!(
                    "{}: {why}; the state stays updated: fix it, then run 'luoctl finish'",
                    self.bad("no finish")
                ));
            }
            AgentEvent::Finished { result: Ok(state) } => self.line(format_args!(
                "every updated hook succeeded: sent finish; state {state}"
            )),
            AgentEvent::Finished { result: Err(err) } => self.line(format_args!(
                "every updated hook succeeded, but finish could not be sent: {err}"
            )),
            AgentEvent::FinishLeft => self.line(format_args!(
                "every updated hook succeeded; not sending finish (--no-finish)"
            )),
            _ => {}
        }
    }
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
    fn no_colour_means_no_escape_codes() {
        let log = Log::new(false);
        assert_eq!(log.bad("failed").to_string(), "failed");
        let log = Log::new(true);
        assert_eq!(log.bad("failed").to_string(), "\x1b[31mfailed\x1b[0m");
    }
}
