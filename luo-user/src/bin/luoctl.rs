//! `luoctl`: a thin command line over the `luo_user` library. See `luoctl --help`.

// A binary's root looks for modules beside it; these live in a directory named after it.
#[path = "luoctl/cli.rs"]
mod cli;
#[path = "luoctl/watch.rs"]
mod watch;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use luo_user::{Control, Event, State, StateFile, handover, kexec};

use crate::cli::{Cli, Command, EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, KexecArgs};

/// Why a command did not succeed, and so its exit status.
#[derive(Debug)]
pub enum Failure {
    /// The library failed; its message names the path and what to do.
    Luo(luo_user::Error),
    /// Writing the output failed.
    Output(io::Error),
    /// The time ran out (exit 124); the message says what was awaited.
    TimedOut(String),
}

impl From<luo_user::Error> for Failure {
    fn from(err: luo_user::Error) -> Self {
        Failure::Luo(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Output(err)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::from(EXIT_OK),
        // A reader that went away (`luoctl watch | head -1`) is not an error.
        Err(Failure::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::from(EXIT_OK)
        }
        Err(Failure::Output(err)) => {
            eprintln!("luoctl: error: cannot write the output: {err}");
            ExitCode::from(EXIT_ERROR)
        }
        Err(Failure::Luo(err)) => {
            eprintln!("luoctl: error: {err}");
            ExitCode::from(EXIT_ERROR)
        }
        Err(Failure::TimedOut(message)) => {
            eprintln!("luoctl: timed out: {message}");
            ExitCode::from(EXIT_TIMEOUT)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let open_state = || StateFile::open_with_interval(&cli.state_file, cli.interval.into());
    match &cli.command {
        Command::State { json } => print_state(open_state()?.state()?, *json),
        Command::Watch(args) => watch::run(open_state()?, args),
        Command::Wait { states, timeout } => {
            let mut watcher = open_state()?.watch()?;
            if !states.has(watcher.current()) {
                // The ready line: from here on no change can be missed (the read armed it).
                eprintln!(
                    "luoctl: waiting for {states} at {} (state: {})",
                    cli.state_file.display(),
                    watcher.current()
                );
            }
            match watcher.wait_for(*states, timeout.map(Into::into))? {
                Some(state) => print_state(state, false),
                None => Err(Failure::TimedOut(format!(
                    "waited {} for {} to reach {states} (state: {})",
                    timeout.map(|d| d.to_string()).unwrap_or_default(),
                    cli.state_file.display(),
                    watcher.current()
                ))),
            }
        }
        Command::Prepare => send(cli, Event::Prepare),
        Command::Cancel => {
            send(cli, Event::Cancel)?;
            // The abandoned live update may have left its next kernel loaded, handover marker
            // and all: a later plain kexec into it would come up `updated`.
            match kexec::unload(std::path::Path::new(kexec::DEFAULT_PROGRAM)) {
                // No kexec-tools: nothing can have been loaded through luoctl.
                Ok(()) | Err(luo_user::Error::Kexec(kexec::KexecError::Missing { .. })) => Ok(()),
                Err(err) => {
                    eprintln!("luoctl: warning: {err}");
                    Ok(())
                }
            }
        }
        Command::Finish => send(cli, Event::Finish),
        Command::Handover => {
            let generation = handover::generation_in_file(&cli.cmdline_file)?;
            let mut out = io::stdout().lock();
            writeln!(out, "{generation}")?;
            out.flush()?;
            Ok(())
        }
        Command::Kexec(args) => live_update_kexec(cli, args, open_state()?),
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
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut io::stdout().lock())?;
            Ok(())
        }
    }
}

/// `luoctl kexec`: load, then (unless --load-only) reboot; returns only on failure.
fn live_update_kexec(cli: &Cli, args: &KexecArgs, state: StateFile) -> Result<(), Failure> {
    let request = kexec::Request {
        program: args.kexec_bin.clone(),
        kernel: args.kernel.clone(),
        initrd: args.initrd.clone(),
        append: args.append.join(" "),
        cmdline_file: cli.cmdline_file.clone(),
    };
    let loaded = kexec::load(&state, &request)?;
    let mut err = io::stderr().lock();
    if !loaded.warnings.is_empty() {
        writeln!(err, "luoctl: kexec -l said: {}", loaded.warnings)?;
    }
    if args.load_only {
        writeln!(
            err,
            "luoctl: loaded {} for live update generation {} (command line: {}); \
             'kexec -e' reboots into it",
            loaded.kernel.display(),
            loaded.generation,
            loaded.command_line
        )?;
        err.flush()?;
        return Ok(());
    }
    writeln!(
        err,
        "luoctl: kexec into {}, live update generation {}",
        loaded.kernel.display(),
        loaded.generation
    )?;
    err.flush()?;
    drop(err);
    Err(kexec::execute(&state, &loaded).into())
}

fn send(cli: &Cli, event: Event) -> Result<(), Failure> {
    let state = Control::open(&cli.device)?.send(event)?;
    print_state(state, false)
}

fn print_state(state: State, json: bool) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    if json {
        writeln!(out, r#"{{"state":"{state}"}}"#)?;
    } else {
        writeln!(out, "{state}")?;
    }
    out.flush()?;
    Ok(())
}
