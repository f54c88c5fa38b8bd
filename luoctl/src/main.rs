//! `luoctl`: a thin command line over the `luo_user` library. See `luoctl --help`.

mod agent;
mod cancel;
mod cli;
mod exit;
mod json;
mod kexec;
mod man;
mod notify;
mod record;
mod signals;
mod watch;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use luo_user::keeper::Client;
use luo_user::{Control, Event, Snapshot, State, StateFile};

use crate::cli::{Cli, Command, EventArgs, FinishArgs, PrepareArgs};
use crate::exit::Failure;
use crate::json::Object;

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit::report(run(&cli))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::State(args) if args.json => print_snapshot(&args.state.state_file),
        Command::State(args) => print_state(args.state.open()?.state()?, false),
        Command::Generation(args) => {
            let generation = luo_user::read_generation(&args.generation.generation_file)?;
            let mut out = io::stdout().lock();
            if args.json {
                writeln!(out, "{}", Object::new().num("generation", generation))?;
            } else {
                writeln!(out, "{generation}")?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Watch(args) => watch::run(args),
        Command::Wait(args) => {
            let states = args.set();
            let mut watcher = args.state.open()?.watch()?;
            if !states.has(watcher.current()) && !args.quiet.quiet {
                // The ready line: from here on every change wakes the watcher (the read armed it);
                // a state reached and left between two reads is still not seen.
                eprintln!(
                    "luoctl: waiting for {states} at {} (state: {})",
                    args.state.state_file.display(),
                    watcher.current()
                );
            }
            match watcher.wait_for(states, args.timeout.map(Into::into))? {
                Some(state) => print_state(state, args.json),
                None => Err(Failure::TimedOut(format!(
                    "waited {} for {} to reach {states} (state: {})",
                    args.timeout.map(|d| d.to_string()).unwrap_or_default(),
                    args.state.state_file.display(),
                    watcher.current()
                ))),
            }
        }
        Command::Prepare(args) => prepare(args),
        Command::Cancel(args) => cancel::run(args),
        Command::Finish(args) => finish(args),
        Command::Agent(args) => agent::run(args),
        Command::Kexec(args) => kexec::run(args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let name = command.get_name().to_string();
            // clap_complete panics when its writer fails (a closed pipe), and a Vec cannot.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, name, &mut script);
            let mut out = io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
            Ok(())
        }
        Command::Man { dir: None, .. } => Ok(man::print(Cli::command())?),
        Command::Man {
            dir: Some(dir),
            quiet,
        } => {
            let written = man::write_all(Cli::command(), dir).map_err(|err| {
                Failure::Output(io::Error::new(
                    err.kind(),
                    format!("cannot write the man pages into {}: {err}", dir.display()),
                ))
            })?;
            if !quiet.quiet {
                eprintln!(
                    "luoctl: wrote {} man pages into {}",
                    written.len(),
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

/// Standalone: the prepare event. Observer (no events in mainline): a request to the agent,
/// which preserves its workloads' files and runs the prepared hooks.
fn prepare(args: &PrepareArgs) -> Result<(), Failure> {
    if luo_user::flavour_beside(&args.state.state_file) != Some(luo_user::Flavour::Observer) {
        return send(&args.event, Event::Prepare);
    }
    let socket = &args.socket.socket;
    eprintln!(
        "luoctl: observer flavour: asking the agent at {} to preserve its workloads' files and \
         run the prepared hooks",
        socket.display()
    );
    let mark = Client::connect(socket)?.prepare(args.timeout.into())?;
    if let Some(transitions) = mark.transitions {
        eprintln!("luoctl: ready for the kexec at transition {transitions}");
    }
    print_state(args.state.open()?.state()?, args.event.json)
}

/// Standalone: the finish event. Observer (no events in mainline): a request to the agent,
/// which finishes the sessions its workloads restored.
fn finish(args: &FinishArgs) -> Result<(), Failure> {
    if luo_user::flavour_beside(&args.state.state_file) != Some(luo_user::Flavour::Observer) {
        return send(&args.event, Event::Finish);
    }
    let (finished, waiting) = Client::connect(&args.socket.socket)?.finish()?;
    eprintln!(
        "luoctl: observer flavour: the agent finished {finished} restored session(s); \
         {waiting} claimed session(s) wait for their workload's restore"
    );
    print_state(args.state.open()?.state()?, args.event.json)
}

fn send(args: &EventArgs, event: Event) -> Result<(), Failure> {
    let state = Control::open(&args.device.device)?.send(event)?;
    print_state(state, args.json)
}

/// Prints `{"v":1,"state":"...","transitions":N}` from a snapshot of the state file and the
/// transition counter beside it, or without `transitions` when there is no counter (an older
/// module).
fn print_snapshot(state_file: &Path) -> Result<(), Failure> {
    let (state, transitions) = match Snapshot::read_beside(state_file) {
        Ok(snapshot) => (snapshot.state, Some(snapshot.transitions)),
        Err(luo_user::Error::NoTransitions { .. }) => (StateFile::open(state_file)?.state()?, None),
        Err(err) => return Err(err.into()),
    };
    let mut out = io::stdout().lock();
    let object = Object::new()
        .str("state", state.word())
        .opt_num("transitions", transitions);
    writeln!(out, "{object}")?;
    out.flush()?;
    Ok(())
}

/// Prints `state` as a word, or as `{"v":1,"state":"..."}`.
fn print_state(state: State, json: bool) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    if json {
        writeln!(out, "{}", Object::new().str("state", state.word()))?;
    } else {
        writeln!(out, "{state}")?;
    }
    out.flush()?;
    Ok(())
}
