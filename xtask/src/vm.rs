//! The guest runner: boots the kernel under QEMU (TCG, 2 CPUs) with virtme-ng, which shares the
//! host's files over 9p, runs one shell command in it, and returns the command's exit code and
//! everything the guest printed (the kernel console included).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cache;
use crate::kernel;
use crate::run::{self, Result};
use crate::setup;

/// What a guest run produced.
pub struct GuestRun {
    /// The command's exit code; `None` when the guest did not report one (timeout, crash).
    pub code: Option<i32>,
    /// Whether the outer timeout ended the run.
    pub timed_out: bool,
    /// Standard output of the command.
    pub stdout: String,
    /// The guest's console (kernel messages) and virtme-ng's own messages.
    pub console: String,
    /// How long the run took, boot included.
    pub elapsed: Duration,
}

impl GuestRun {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The per-guest time limit: `LUO_VM_TIMEOUT` seconds, default 300 (a TCG boot takes seconds,
/// the longest test about a minute).
fn timeout() -> Duration {
    let secs = std::env::var("LUO_VM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Which stream of the guest a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The command's standard output.
    Stdout,
    /// The kernel console and virtme-ng's messages (the command's stderr too).
    Console,
}

/// How to boot the guest, beyond the kernel and the command.
#[derive(Default)]
pub struct GuestOptions {
    /// Host directories the guest may write (`--rwdir`); everything else is read-only.
    pub rw_dirs: Vec<PathBuf>,
    /// Words appended to the kernel command line.
    pub append: Vec<String>,
}

/// Boots `kernel_build` and runs `script` with `sh -c` in the guest, as root, in the workspace.
pub fn run_in_guest(kernel_build: &Path, script: &str) -> Result<GuestRun> {
    run_in_guest_with(kernel_build, script, &GuestOptions::default(), |_, _, _| {})
}

/// Like [`run_in_guest`], with options, calling `on_line` for every line as it arrives, with
/// the host's time of arrival (the demo's timeline is made of these).
pub fn run_in_guest_with(
    kernel_build: &Path,
    script: &str,
    options: &GuestOptions,
    mut on_line: impl FnMut(Stream, &str, Instant),
) -> Result<GuestRun> {
    let limit = timeout();
    let vng = setup::venv_dir().join("bin/vng");
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10")
        .arg(limit.as_secs().to_string())
        .arg(&vng)
        .arg("--run")
        .arg(kernel_build)
        // No KVM here: without this flag vng picks KVM and hangs. 9p because bookworm's
        // virtiofsd is too old and costs seconds before vng falls back.
        .args([
            "--disable-kvm",
            "--force-9p",
            "--skip-modules",
            "--cpus",
            "2",
            "--memory",
            "1G",
        ])
        // The kernel console on stderr, with the module's pr_info lines.
        .args(["--verbose", "--append", "loglevel=7"]);
    for word in &options.append {
        cmd.arg("--append").arg(word);
    }
    for dir in &options.rw_dirs {
        cmd.arg(format!("--rwdir={}", dir.display()));
    }
    // The command travels base64-encoded on the kernel command line, which x86 cuts at 2048
    // bytes (the root file system options come after it), so a script goes in a file.
    let script_file = write_script(script)?;
    cmd.arg("--cwd")
        .arg(cache::workspace())
        .arg("--")
        .arg("sh")
        .arg(&script_file)
        .current_dir(cache::workspace())
        // vng starts its helpers (virtme-run) from PATH.
        .env("PATH", setup::path_with(&setup::venv_dir().join("bin"))?)
        // vng crashes on a closed stdin.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", vng.display()))?;
    let (tx, rx) = mpsc::channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|out| forward_lines(out, Stream::Stdout, tx.clone())),
        child
            .stderr
            .take()
            .map(|err| forward_lines(err, Stream::Console, tx.clone())),
    ];
    drop(tx);
    let (mut stdout, mut console) = (String::new(), String::new());
    for (stream, line, at) in rx {
        on_line(stream, &line, at);
        let text = if stream == Stream::Stdout {
            &mut stdout
        } else {
            &mut console
        };
        text.push_str(&line);
        text.push('\n');
    }
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|err| format!("waiting for {}: {err}", vng.display()))?;
    let code = status.code();
    let _ = std::fs::remove_file(&script_file);
    // `timeout` answers 124 (or 137 after its KILL), but so may the guest's command (luoctl's
    // own timeout is 124): only the elapsed time tells them apart.
    let timed_out = matches!(code, Some(124 | 137)) && start.elapsed() >= limit;
    Ok(GuestRun {
        code: if timed_out { None } else { code },
        timed_out,
        stdout,
        console,
        elapsed: start.elapsed(),
    })
}

/// Writes `script` to a file of its own under the cache (the guest sees the host's files).
fn write_script(script: &str) -> Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = cache::dir("vm")?.join(format!("script-{}-{n}.sh", std::process::id()));
    std::fs::write(&path, script)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(path)
}

/// Sends each line of `stream` with its arrival time until the stream ends.
fn forward_lines(
    stream: impl Read + Send + 'static,
    which: Stream,
    tx: mpsc::Sender<(Stream, String, Instant)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if tx.send((which, text, Instant::now())).is_err() {
                break;
            }
        }
    })
}

/// `cargo xtask vm -- CMD...`: run a command in a guest booted on our kernel, interactively
/// readable output, and its exit code as ours.
pub fn run_command(args: &[String]) -> Result {
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    if args.is_empty() {
        return Err("usage: cargo xtask vm -- COMMAND [ARGS...]".to_owned());
    }
    let kernel = kernel::ensure()?;
    run::step("guest");
    let script = args
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let run = run_in_guest(&kernel.build, &script)?;
    print!("{}", run.stdout);
    if run.success() {
        Ok(())
    } else {
        Err(failure_report("the command", &run))
    }
}

/// A failure message with the end of the guest's console.
pub fn failure_report(what: &str, run: &GuestRun) -> String {
    let how = match (run.timed_out, run.code) {
        (true, _) => format!("timed out after {:.0?}", run.elapsed),
        (false, Some(code)) => format!("exited {code}"),
        (false, None) => "ended without an exit code (guest crash?)".to_owned(),
    };
    let console: Vec<&str> = run.console.lines().collect();
    let stdout: Vec<&str> = run.stdout.lines().collect();
    format!(
        "{what} {how}\n--- output (last 40 lines) ---\n{}\n--- guest console (last 60 lines) ---\n{}",
        stdout[stdout.len().saturating_sub(40)..].join("\n"),
        console[console.len().saturating_sub(60)..].join("\n")
    )
}

/// Quotes `arg` for `sh`.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
