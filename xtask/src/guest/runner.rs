//! The guest runner: boots the kernel under QEMU (TCG, 2 CPUs) on the host's files (the root
//! file system is the host's `/` over 9p, read-only), runs one shell script there as root
//! through our own init (`luo-guest-init`), and returns the script's exit code, its standard
//! output and the guest's console, each line with the host's time of arrival.
//!
//! The init mounts what the tests need and nothing more (no udev, no services), so power-on to
//! the script takes a few seconds of TCG instead of twenty. The exit code comes back on a
//! virtio port only the init writes; a guest that never reports one crashed or hung, and the
//! runner's own deadline tells a hang from a failing command.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use luo_guest_init::protocol::{self, Config, Share};

use crate::build::{cache, guest_init};
use crate::guest::{console, qemu};
use crate::run::Result;

/// What a guest run produced.
pub struct GuestRun {
    /// The command's exit code; `None` when the guest did not report one (timeout, crash).
    pub code: Option<i32>,
    /// Whether the outer timeout ended the run.
    pub timed_out: bool,
    /// Standard output of the command.
    pub stdout: String,
    /// The guest's console (kernel messages, the init's, the command's stderr), QEMU's own
    /// messages, and the runner's notes on how the run ended (lines starting `xtask vm:`).
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
    /// The kernel console and QEMU's messages (the command's stderr too).
    Console,
}

/// How to boot the guest, beyond the kernel and the command.
#[derive(Default)]
pub struct GuestOptions {
    /// Host directories the guest may write, mounted at the same paths; everything else is
    /// read-only.
    pub rw_dirs: Vec<PathBuf>,
    /// Words appended to the kernel command line.
    pub append: Vec<String>,
    /// Boot Debian's systemd as PID 1 (on an overlay of the host's root, with the host's units
    /// cut) and run the script as its service; see `luo-guest-init`'s systemd mode. The script
    /// runs twice per boot: `LUO_GUEST_PHASE=setup` before systemd, `service` under it.
    pub systemd: bool,
}

/// Boots `kernel_build` and runs `script` with `sh` in the guest, as root, in the workspace.
pub fn run_in_guest(kernel_build: &Path, script: &str) -> Result<GuestRun> {
    run_in_guest_with(kernel_build, script, &GuestOptions::default(), |_, _, _| {})
}

/// Like [`run_in_guest`], with options, calling `on_line` for every line as it arrives, with
/// the host's time of arrival (the demo's timeline is made of these).
pub fn run_in_guest_with(
    kernel_build: &Path,
    script: &str,
    options: &GuestOptions,
    on_line: impl FnMut(Stream, &str, Instant),
) -> Result<GuestRun> {
    let limit = timeout();
    let bzimage = kernel_build.join("arch/x86/boot/bzImage");
    if !bzimage.is_file() {
        return Err(format!(
            "no kernel image at {}; build the kernel with `cargo xtask kernel`",
            bzimage.display()
        ));
    }
    let init = guest_init::ensure()?;
    // The script goes in a file: the command line is short (see `qemu::command_line`).
    let files = RunFiles::new(script)?;
    let config = Config {
        script: utf8(&files.script)?,
        cwd: utf8(&cache::workspace())?,
        shares: shares(&options.rw_dirs)?,
        // The kernel, which a script may boot again with kexec, and the cache, whose files
        // (mainline's selftests, a mirrored module source) scripts run by their host paths:
        // both may lie under the guest's scratch `/tmp` (`LUO_CACHE=/tmp/...`, `KDIR`).
        keep: vec![utf8(kernel_build)?, utf8(&cache::root())?],
        systemd: options.systemd,
    };
    let command_line = qemu::command_line(&init, &config, &options.append)?;
    let args = qemu::args(&qemu::Machine {
        bzimage: &bzimage,
        command_line: &command_line,
        config: &config,
        status_file: &files.status,
    })?;
    let start = Instant::now();
    let mut child = Command::new(qemu::QEMU)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            format!(
                "cannot start {}: {err} (it comes with Debian's qemu-system-x86; `cargo xtask \
                 setup` installs it)",
                qemu::QEMU
            )
        })?;
    let Output {
        stdout,
        mut console,
        timed_out,
    } = collect(&mut child, start + limit, on_line);
    let exit = child
        .wait()
        .map_err(|err| format!("waiting for {}: {err}", qemu::QEMU))?;
    let elapsed = start.elapsed();
    let code = if timed_out {
        console.push_str(&format!(
            "xtask vm: no exit status after {limit:?} (LUO_VM_TIMEOUT): killed QEMU\n"
        ));
        None
    } else {
        files.code(exit, &mut console)
    };
    Ok(GuestRun {
        code,
        timed_out,
        stdout,
        console,
        elapsed,
    })
}

/// The writable shares: each directory (which must exist) under its real path, since the
/// guest mounts it at the same path.
fn shares(rw_dirs: &[PathBuf]) -> Result<Vec<Share>> {
    rw_dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let path = dir.canonicalize().map_err(|err| {
                format!(
                    "cannot share {} with the guest: {err} (create the directory first)",
                    dir.display()
                )
            })?;
            Ok(Share {
                tag: format!("luo_rw{i}"),
                path: utf8(&path)?,
            })
        })
        .collect()
}

/// What QEMU's two pipes carried.
struct Output {
    stdout: String,
    console: String,
    timed_out: bool,
}

/// Reads QEMU's stdout (the command's) and stderr (the console) line by line until both end,
/// calling `on_line` for each; at `deadline`, kills QEMU and reads what is left.
fn collect(
    child: &mut Child,
    deadline: Instant,
    mut on_line: impl FnMut(Stream, &str, Instant),
) -> Output {
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
    let mut output = Output {
        stdout: String::new(),
        console: String::new(),
        timed_out: false,
    };
    loop {
        let next = if output.timed_out {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        };
        match next {
            Ok((stream, line, at)) => {
                on_line(stream, &line, at);
                let text = match stream {
                    Stream::Stdout => &mut output.stdout,
                    Stream::Console => &mut output.console,
                };
                text.push_str(&line);
                text.push('\n');
            }
            Err(RecvTimeoutError::Timeout) => {
                output.timed_out = true;
                // A hung guest: QEMU holds nothing worth a clean shutdown, and its death
                // ends the pipes.
                let _ = child.kill();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    output
}

/// The host files of one guest run: the script, and the file the status port writes. Both are
/// removed when the run is over.
struct RunFiles {
    script: PathBuf,
    status: PathBuf,
}

impl RunFiles {
    /// Writes `script` to a file of its own under the cache (the guest sees the host's files).
    fn new(script: &str) -> Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = cache::dir("vm")?;
        let name = format!("{}-{n}", std::process::id());
        let files = Self {
            script: dir.join(format!("script-{name}.sh")),
            status: dir.join(format!("status-{name}")),
        };
        std::fs::write(&files.script, script)
            .map_err(|err| format!("cannot write {}: {err}", files.script.display()))?;
        Ok(files)
    }

    /// The exit code the init reported, or `None` with a note on the console saying why not.
    fn code(&self, exit: ExitStatus, console: &mut String) -> Option<i32> {
        let text = match std::fs::read_to_string(&self.status) {
            Ok(text) => text,
            Err(err) => {
                console.push_str(&format!(
                    "xtask vm: {} ended ({exit}) without creating {}: {err}\n",
                    qemu::QEMU,
                    self.status.display()
                ));
                return None;
            }
        };
        if text.is_empty() {
            console.push_str(&format!(
                "xtask vm: the guest ended without an exit status ({} {exit}): a panic, or the \
                 init failed (see its message above)\n",
                qemu::QEMU
            ));
            return None;
        }
        protocol::parse_status(&text)
            .map_err(|err| console.push_str(&format!("xtask vm: {err}\n")))
            .ok()
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
        let _ = std::fs::remove_file(&self.status);
    }
}

fn utf8(path: &Path) -> Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        format!(
            "{} is not UTF-8 and cannot go on the kernel command line",
            path.display()
        )
    })
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

/// A failure message with the end of the guest's console.
pub fn failure_report(what: &str, run: &GuestRun) -> String {
    let how = match (run.timed_out, run.code) {
        (true, _) => format!("timed out after {:.0?}", run.elapsed),
        (false, Some(code)) => format!("exited {code}"),
        (false, None) => {
            "ended without an exit code (a guest panic or an init failure: see the console)"
                .to_owned()
        }
    };
    let console: Vec<&str> = run.console.lines().collect();
    let stdout: Vec<&str> = run.stdout.lines().collect();
    format!(
        "{what} {how}\n--- output (last 40 lines) ---\n{}\n{}--- guest console (last 60 lines) ---\n{}",
        stdout[stdout.len().saturating_sub(40)..].join("\n"),
        earlier_kernels(&console),
        console[console.len().saturating_sub(60)..].join("\n")
    )
}

/// The last 20 console lines of each kernel before the last one, for a run that went through
/// kexec: how the old kernel went down is what a failed live update most often needs, and the
/// tail of the console holds only the new kernel.
fn earlier_kernels(console: &[&str]) -> String {
    let starts: Vec<usize> = console
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains(&format!("] {} ", console::LINUX_VERSION)))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::new();
    for (n, pair) in starts.windows(2).enumerate() {
        let end = pair[1];
        let from = end.saturating_sub(20).max(pair[0]);
        out.push_str(&format!(
            "--- guest console, the end of kernel {} (before the kexec) ---\n{}\n",
            n + 1,
            console[from..end].join("\n")
        ));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_each_kernel_before_a_kexec_is_shown() {
        let console = [
            "[ 0.0] Linux version 7.3.4",
            "[ 5.0] luo: Switched from [prepared] to [frozen]",
            "[ 5.1] kexec_core: Starting new kernel",
            "[ 0.0] Linux version 7.3.4",
            "[ 1.4] PCI host bridge to bus 0000:00",
        ];
        let shown = earlier_kernels(&console);
        assert!(shown.contains("the end of kernel 1"), "{shown}");
        assert!(shown.contains("Starting new kernel"), "{shown}");
        assert!(!shown.contains("PCI host bridge"), "{shown}");
        assert_eq!(earlier_kernels(&console[..3]), "");
    }
}
