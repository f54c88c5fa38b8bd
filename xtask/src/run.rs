//! Running external commands: a step line with its duration, output to a log for long steps,
//! and errors that say what failed and where to look.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a failed step reports.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Prints a step headline; steps are what a person watches on a long cold run.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with its output on the terminal; fails with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result {
    let line = describe(cmd);
    let status = cmd
        .status()
        .map_err(|err| format!("cannot start `{line}`: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// Runs `cmd` with its output captured to `log`, printing how long it took; on failure shows
/// the log's last lines.
pub fn run_logged(what: &str, cmd: &mut Command, log: &Path) -> Result {
    let line = describe(cmd);
    let start = Instant::now();
    eprintln!("    {what} (log: {})", log.display());
    let out = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|err| format!("cannot share {}: {err}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|err| format!("cannot start `{line}`: {err}"))?;
    let status = wait_with_progress(&mut child, what, log, start)
        .map_err(|err| format!("waiting for `{line}`: {err}"))?;
    eprintln!("    {what}: done in {:.0?}", start.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{line}` failed ({status}); the end of {}:\n{}",
            log.display(),
            tail(log, 30)
        ))
    }
}

/// Runs `cmd` and returns its standard output, trimmed.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot start `{line}`: {err}"))?;
    if !out.status.success() {
        return Err(format!("`{line}` failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

/// How often a long step reports that it is still going.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Waits for `child`, printing every [`PROGRESS_EVERY`] the elapsed time and the log's last line,
/// so a cold kernel build shows it is moving.
fn wait_with_progress(
    child: &mut Child,
    what: &str,
    log: &Path,
    start: Instant,
) -> std::io::Result<ExitStatus> {
    let mut next_report = start + PROGRESS_EVERY;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= next_report {
            let last = tail(log, 1);
            eprintln!(
                "    {what}: {:.0?} so far: {}",
                start.elapsed(),
                last.trim()
            );
            next_report += PROGRESS_EVERY;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
