//! The standalone demo's workload: the counter's checkpoint protocol (which the hooks of
//! `contrib/hooks` follow), and the counter binary checkpointing and restoring. The observer
//! demo's workload needs mainline's sessions; `cargo xtask demo` runs it in a guest.
//!
//! `cargo test` builds the examples beside the test binaries (`target/<profile>/examples`);
//! a run that did not build them fails with a message saying how.

#[path = "../examples/shared/checkpoint.rs"]
mod checkpoint;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A bound for every wait, so a broken example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

/// The path of a built example; `cargo test` builds examples beside the test binaries.
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --examples -p luo-user` first (plain `cargo test` does)",
        path.display()
    );
    path
}

fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not exit within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_checkpoint_reads_back_and_leaves_no_temporary_file() {
    let dir = TempDir::new().unwrap();
    checkpoint::write(dir.path(), 7).unwrap();
    checkpoint::write(dir.path(), u64::MAX).unwrap();
    let path = checkpoint::checkpoint_path(dir.path());
    assert_eq!(checkpoint::read(&path).unwrap(), u64::MAX);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{}\n", u64::MAX)
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [checkpoint::CHECKPOINT]);
}

#[test]
fn a_bad_checkpoint_is_invalid_data() {
    let dir = TempDir::new().unwrap();
    let path = checkpoint::checkpoint_path(dir.path());
    fs::write(&path, "twelve\n").unwrap();
    let err = checkpoint::read(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("twelve"), "{err}");
}

/// Runs the counter until it has counted a little, asks for a checkpoint, and returns the
/// value it printed.
fn run_counter(counter: &Path, dir: &Path, from: Option<&Path>) -> (u64, u64) {
    let mut command = Command::new(counter);
    command.arg("--dir").arg(dir).stdout(Stdio::piped());
    if let Some(from) = from {
        command.arg("--from").arg(from);
    }
    let mut child = command.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let started = read_line(&mut out);
    let start: u64 = started
        .strip_prefix("counter: started at ")
        .unwrap_or_else(|| panic!("{started:?}"))
        .trim()
        .parse()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    fs::write(checkpoint::request_path(dir), b"").unwrap();
    let status = wait(&mut child);
    assert!(status.success(), "{status}");
    let done = read_line(&mut out);
    let value = checkpoint::read(&checkpoint::checkpoint_path(dir)).unwrap();
    assert_eq!(done, format!("counter: checkpointed {value}\n"));
    assert!(
        !checkpoint::request_path(dir).exists(),
        "the request was not removed"
    );
    (start, value)
}

#[test]
fn the_counter_checkpoints_and_restores() {
    let counter = example("counter");
    let dir = TempDir::new().unwrap();
    let (start, first) = run_counter(&counter, dir.path(), None);
    assert_eq!(start, 0);
    assert!(first >= 1, "{first}");
    // Restore from a copy, as the agent does after the kexec.
    let saved = dir.path().join("saved");
    fs::copy(checkpoint::checkpoint_path(dir.path()), &saved).unwrap();
    let (start, second) = run_counter(&counter, dir.path(), Some(&saved));
    assert_eq!(start, first);
    assert!(second > first, "{second} after {first}");
}

#[test]
fn the_counter_refuses_a_missing_checkpoint() {
    let counter = example("counter");
    let dir = TempDir::new().unwrap();
    let out = Command::new(counter)
        .arg("--dir")
        .arg(dir.path())
        .arg("--from")
        .arg(dir.path().join("absent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot restore"));
}
