//! The toy workload of the live update demo: a counter that survives a kexec by checkpoint.
//!
//! ```text
//! counter --dir DIR [--from FILE]
//! ```
//!
//! Keeps a u64 in memory and adds one every 50 ms, starting from the number in FILE if given
//! (else 0), and prints `counter: started at N`. Every tick it looks for
//! `DIR/checkpoint.request`; when it is there, the counter writes its value to
//! `DIR/checkpoint` (temporary file, fsync, rename), removes the request, prints
//! `counter: checkpointed N` and exits 0: the workload is suspended. Exit 1 on an error, 2 on
//! a wrong command line.

#[path = "shared/checkpoint.rs"]
mod checkpoint;
#[path = "shared/report.rs"]
mod report;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use report::Report;

const TICK: Duration = Duration::from_millis(50);
const USAGE: &str = "usage: counter --dir DIR [--from FILE]";

struct Args {
    dir: PathBuf,
    from: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut dir = None;
    let mut from = None;
    while let Some(arg) = args.next() {
        let slot = match arg.to_str() {
            Some("--dir") => &mut dir,
            Some("--from") => &mut from,
            Some("-h" | "--help") => return Err(USAGE.into()),
            _ => return Err(format!("unexpected argument {arg:?}; {USAGE}")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value; {USAGE}", arg.to_string_lossy()))?;
        *slot = Some(PathBuf::from(value));
    }
    Ok(Args {
        dir: dir.ok_or_else(|| format!("--dir is required; {USAGE}"))?,
        from,
    })
}

fn say(report: Report<'_>) {
    let mut out = io::stdout().lock();
    // The demo reads these lines; a closed stdout must not stop the workload.
    let _ = writeln!(out, "{report}");
    let _ = out.flush();
}

fn run(args: &Args) -> Result<(), String> {
    let mut value = match &args.from {
        Some(path) => checkpoint::read(path)
            .map_err(|err| format!("cannot restore from {}: {err}", path.display()))?,
        None => 0,
    };
    say(Report::Started(value));
    let request = checkpoint::request_path(&args.dir);
    loop {
        thread::sleep(TICK);
        value = value.wrapping_add(1);
        if request.exists() {
            checkpoint::write(&args.dir, value).map_err(|err| {
                format!(
                    "cannot write {}: {err}",
                    checkpoint::checkpoint_path(&args.dir).display()
                )
            })?;
            std::fs::remove_file(&request)
                .map_err(|err| format!("cannot remove {}: {err}", request.display()))?;
            say(Report::Checkpointed(value));
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("counter: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("counter: error: {message}");
            ExitCode::FAILURE
        }
    }
}
