//! The live update agent of the demo: one binary for the kernel before and the kernel after.
//!
//! ```text
//! agent --dir DIR --kernel BZIMAGE [--state-file PATH] [--device PATH] [--counter PATH]
//!       [--initrd FILE] [--append ARGS] [--debugfs DIR] [--keep-running]
//! ```
//!
//! It reads the state once at start:
//! - `normal`: starts the workload (`counter --dir DIR`), waits for `prepared`, then asks the
//!   counter to checkpoint (`DIR/checkpoint.request`), waits at most 10 s for it to exit with
//!   `DIR/checkpoint` written, and performs the live update kexec into BZIMAGE exactly as
//!   `luoctl kexec --reuse-cmdline [--append ARGS] BZIMAGE` does ([`luo_user::kexec`]:
//!   `kexec_file_load`, then a kexec reboot; the module hands the state over in kexec
//!   handover memory). A failed hook is reported
//!   (`agent: hook failed: ...` on stderr), cancel is sent so the state goes back to `normal`,
//!   and the agent exits 1.
//! - `updated`: says which live update generation this is (from sysfs), restores the workload (`counter --dir DIR --from DIR/checkpoint`), sends
//!   finish, and exits 0. The counter is left running with `--keep-running`; otherwise the
//!   agent checks that it is still alive half a second later and stops it.
//! - anything else: says so and exits 1.
//!
//! Every line is flushed and starts with `agent: `. The defaults: the standard sysfs and
//! device paths (the generation attribute beside the state attribute), `counter` beside this
//! binary, debugfs at `/sys/kernel/debug`.

#[path = "shared/checkpoint.rs"]
mod checkpoint;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use luo_user::kexec::{self, CommandLine, Request};
use luo_user::{Control, State, StateFile, StateSet};

/// How long the counter may take to checkpoint and exit.
const CHECKPOINT_LIMIT: Duration = Duration::from_secs(10);
/// How often the agent, waiting for `prepared`, checks that the workload still runs.
const LIVENESS: Duration = Duration::from_millis(200);
/// How long the restored counter runs before the agent stops it (without --keep-running).
const RESTORED_RUN: Duration = Duration::from_millis(500);

const USAGE: &str = "usage: agent --dir DIR --kernel BZIMAGE [--state-file PATH] \
    [--device PATH] [--counter PATH] [--initrd FILE] [--append ARGS] [--debugfs DIR] \
    [--keep-running]";

/// Prints one flushed line on stdout, prefixed `agent: `.
macro_rules! say {
    ($($arg:tt)*) => { say(format_args!($($arg)*)) };
}

fn say(line: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "agent: {line}");
    let _ = out.flush();
}

/// Prints one flushed line on stderr, prefixed `agent: `.
fn complain(line: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "agent: {line}");
    let _ = err.flush();
}

struct Args {
    dir: PathBuf,
    kernel: PathBuf,
    state_file: PathBuf,
    device: PathBuf,
    counter: PathBuf,
    initrd: Option<PathBuf>,
    append: String,
    debugfs: PathBuf,
    keep_running: bool,
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut dir = None;
    let mut kernel = None;
    let mut state_file = None;
    let mut device = None;
    let mut counter = None;
    let mut initrd = None;
    let mut append = None;
    let mut debugfs = None;
    let mut keep_running = false;
    while let Some(arg) = args.next() {
        let slot = match arg.to_str() {
            Some("--dir") => &mut dir,
            Some("--kernel") => &mut kernel,
            Some("--state-file") => &mut state_file,
            Some("--device") => &mut device,
            Some("--counter") => &mut counter,
            Some("--initrd") => &mut initrd,
            Some("--append") => &mut append,
            Some("--debugfs") => &mut debugfs,
            Some("--keep-running") => {
                keep_running = true;
                continue;
            }
            Some("-h" | "--help") => return Err(USAGE.into()),
            _ => return Err(format!("unexpected argument {arg:?}; {USAGE}")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value; {USAGE}", arg.to_string_lossy()))?;
        *slot = Some(PathBuf::from(value));
    }
    let counter = match counter {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|err| format!("cannot find this binary ({err}); give --counter"))?
            .with_file_name("counter"),
    };
    Ok(Args {
        dir: dir.ok_or_else(|| format!("--dir is required; {USAGE}"))?,
        kernel: kernel.ok_or_else(|| format!("--kernel is required; {USAGE}"))?,
        state_file: state_file.unwrap_or_else(|| PathBuf::from(luo_sysfs_abi::path::STATE_PATH)),
        device: device.unwrap_or_else(|| PathBuf::from(luo_sysfs_abi::path::DEVICE_PATH)),
        counter,
        initrd,
        append: append
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
        debugfs: debugfs.unwrap_or_else(|| PathBuf::from(kexec::DEBUGFS)),
        keep_running,
    })
}

fn spawn_counter(args: &Args, from: Option<&Path>) -> Result<Child, String> {
    let mut command = Command::new(&args.counter);
    command.arg("--dir").arg(&args.dir);
    if let Some(from) = from {
        command.arg("--from").arg(from);
    }
    command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", args.counter.display()))
}

/// The state before the live update: run the workload, wait for `prepared`, checkpoint, kexec.
fn before(args: &Args, state: StateFile) -> ExitCode {
    for stale in [
        checkpoint::request_path(&args.dir),
        checkpoint::checkpoint_path(&args.dir),
    ] {
        match std::fs::remove_file(&stale) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                complain(format_args!("cannot remove {}: {err}", stale.display()));
                return ExitCode::FAILURE;
            }
            _ => {}
        }
    }
    let mut counter = match spawn_counter(args, None) {
        Ok(child) => child,
        Err(message) => {
            complain(format_args!("{message}"));
            return ExitCode::FAILURE;
        }
    };
    say!("workload running");
    let state_path = state.path().to_path_buf();
    let reopen = || StateFile::open(&state_path);
    let mut watcher = match state.watch() {
        Ok(watcher) => watcher,
        Err(err) => return stop(&mut counter, format_args!("cannot watch the state: {err}")),
    };
    loop {
        match watcher.wait_for(StateSet::PREPARED, Some(LIVENESS)) {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(err) => {
                return stop(
                    &mut counter,
                    format_args!("stopped waiting for 'prepared': {err}"),
                );
            }
        }
        if let Ok(Some(status)) = counter.try_wait() {
            complain(format_args!("the workload exited on its own ({status})"));
            return ExitCode::FAILURE;
        }
    }
    say!("state prepared: checkpointing the workload");
    let state = match reopen() {
        Ok(state) => state,
        Err(err) => return hook_failed(args, &mut counter, &err),
    };
    let value = match checkpoint(args, &mut counter) {
        Ok(value) => value,
        Err(message) => return hook_failed(args, &mut counter, &message),
    };
    say!("checkpointed counter {value}");
    let request = match live_update_request(args) {
        Ok(request) => request,
        Err(err) => return hook_failed(args, &mut counter, &err),
    };
    if let Err(err) = kexec::load(&state, &request) {
        return hook_failed(args, &mut counter, &err);
    }
    say!("kexec into {}", args.kernel.display());
    // Returns only when the reboot failed.
    let err = kexec::reboot(&state);
    hook_failed(args, &mut counter, &err)
}

/// The kexec of `luoctl kexec --reuse-cmdline --append ARGS KERNEL [--initrd FILE]`.
fn live_update_request(args: &Args) -> luo_user::Result<Request> {
    let running = kexec::running_command_line()?;
    let line = CommandLine::reuse(&running, [&args.append])?;
    let mut request = Request::new(&args.kernel, line).with_debugfs(&args.debugfs);
    if let Some(initrd) = &args.initrd {
        request = request.with_initrd(initrd);
    }
    Ok(request)
}

/// Asks the counter to checkpoint and waits for it to exit with the file written.
fn checkpoint(args: &Args, counter: &mut Child) -> Result<u64, String> {
    let request = checkpoint::request_path(&args.dir);
    std::fs::write(&request, b"")
        .map_err(|err| format!("cannot create {}: {err}", request.display()))?;
    let deadline = Instant::now() + CHECKPOINT_LIMIT;
    let status = loop {
        match counter.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                return Err(format!(
                    "the counter did not checkpoint within {}s",
                    CHECKPOINT_LIMIT.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(format!("cannot wait for the counter: {err}")),
        }
    };
    if !status.success() {
        return Err(format!("the counter failed to checkpoint ({status})"));
    }
    let path = checkpoint::checkpoint_path(&args.dir);
    checkpoint::read(&path).map_err(|err| {
        if err.kind() == io::ErrorKind::NotFound {
            format!("the counter exited but {} is missing", path.display())
        } else {
            format!("cannot read {}: {err}", path.display())
        }
    })
}

/// Reports a failed hook, cancels the live update, and exits 1.
fn hook_failed(args: &Args, counter: &mut Child, reason: &dyn fmt::Display) -> ExitCode {
    complain(format_args!("hook failed: {reason}"));
    let _ = counter.kill();
    let _ = counter.wait();
    let cancelled = Control::open(&args.device).and_then(|control| match control.state()? {
        State::Prepared | State::Frozen => control.cancel().map(Some),
        _ => Ok(None),
    });
    match cancelled {
        Ok(Some(state)) => complain(format_args!("sent cancel, state {state}")),
        Ok(None) => complain(format_args!("nothing to cancel")),
        Err(err) => complain(format_args!("cannot cancel: {err}")),
    }
    ExitCode::FAILURE
}

/// Stops the workload after an error that is not a hook's, and exits 1.
fn stop(counter: &mut Child, reason: fmt::Arguments<'_>) -> ExitCode {
    complain(reason);
    let _ = counter.kill();
    let _ = counter.wait();
    ExitCode::FAILURE
}

/// The state after the live update: restore the workload, then finish.
fn after(args: &Args) -> ExitCode {
    // The generation attribute sits beside the state attribute.
    match luo_user::read_generation(args.state_file.with_file_name("generation")) {
        Ok(generation) => say!("booted by a live update, generation {generation}"),
        Err(err) => complain(format_args!("{err}")),
    }
    let path = checkpoint::checkpoint_path(&args.dir);
    let value = match checkpoint::read(&path) {
        Ok(value) => value,
        Err(err) => {
            complain(format_args!(
                "restore failed: cannot read {}: {err}",
                path.display()
            ));
            return ExitCode::FAILURE;
        }
    };
    let mut counter = match spawn_counter(args, Some(&path)) {
        Ok(child) => child,
        Err(message) => {
            complain(format_args!("restore failed: {message}"));
            return ExitCode::FAILURE;
        }
    };
    say!("restored counter from {value}");
    match Control::open(&args.device).and_then(|control| control.finish()) {
        Ok(state) => say!("finished, state {state}"),
        Err(err) => return stop(&mut counter, format_args!("cannot finish: {err}")),
    }
    if args.keep_running {
        say!("workload running (pid {})", counter.id());
        return ExitCode::SUCCESS;
    }
    thread::sleep(RESTORED_RUN);
    match counter.try_wait() {
        Ok(None) => {
            let _ = counter.kill();
            let _ = counter.wait();
            say!("workload ran after the update; stopped it");
            ExitCode::SUCCESS
        }
        Ok(Some(status)) => {
            complain(format_args!("the restored workload exited ({status})"));
            ExitCode::FAILURE
        }
        Err(err) => stop(
            &mut counter,
            format_args!("cannot check the workload: {err}"),
        ),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            complain(format_args!("{message}"));
            return ExitCode::from(2);
        }
    };
    if let Err(err) = std::fs::create_dir_all(&args.dir) {
        complain(format_args!("cannot create {}: {err}", args.dir.display()));
        return ExitCode::FAILURE;
    }
    let state = match StateFile::open(&args.state_file).and_then(|file| {
        let state = file.state()?;
        Ok((file, state))
    }) {
        Ok(state) => state,
        Err(err) => {
            complain(format_args!("{err}"));
            return ExitCode::FAILURE;
        }
    };
    match state {
        (file, State::Normal) => {
            say!("state normal");
            before(&args, file)
        }
        (_, State::Updated) => {
            say!("state updated");
            after(&args)
        }
        (_, other) => {
            complain(format_args!(
                "state '{other}': nothing to do here (expected 'normal' or 'updated')"
            ));
            ExitCode::FAILURE
        }
    }
}
