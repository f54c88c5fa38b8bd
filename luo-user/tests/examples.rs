//! The demo's examples: the counter's checkpoint protocol, the counter binary checkpointing and
//! restoring, and the agent's hooks against a plain state file, up to the live update kexec.
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

/// A directory for the agent: a plain state file and the generation beside it, a kernel
/// image, and a stand-in for debugfs without `kho/`, so the live update kexec is refused
/// before `kexec_file_load` (a test never reboots the host).
struct AgentSetup {
    dir: TempDir,
    work: PathBuf,
    state: PathBuf,
    kernel: PathBuf,
    debugfs: PathBuf,
}

impl AgentSetup {
    fn new(state: &str, generation: u64) -> AgentSetup {
        let dir = TempDir::new().unwrap();
        let path = |name: &str| dir.path().join(name);
        let setup = AgentSetup {
            work: path("work"),
            state: path("state"),
            kernel: path("bzImage"),
            debugfs: path("debug"),
            dir,
        };
        fs::create_dir(&setup.work).unwrap();
        fs::write(&setup.state, state).unwrap();
        fs::write(
            setup.dir.path().join("generation"),
            format!("{generation}\n"),
        )
        .unwrap();
        fs::write(&setup.kernel, b"kernel").unwrap();
        // A mounted debugfs is never empty; this one has no `kho/`: KHO is off.
        fs::create_dir_all(setup.debugfs.join("tracing")).unwrap();
        setup
    }

    fn agent(&self, agent: &Path, counter: &Path) -> Command {
        let mut command = Command::new(agent);
        command
            .arg("--dir")
            .arg(&self.work)
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--state-file")
            .arg(&self.state)
            .arg("--device")
            .arg(self.dir.path().join("no-device"))
            .arg("--counter")
            .arg(counter)
            .arg("--debugfs")
            .arg(&self.debugfs);
        command
    }
}

#[test]
fn the_agent_checkpoints_on_prepared_then_goes_through_the_live_update_kexec() {
    let (agent, counter) = (example("agent"), example("counter"));
    let setup = AgentSetup::new("normal\n", 0);
    let mut child = setup
        .agent(&agent, &counter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("workload running"))
    {
        let line = read_line(&mut out);
        assert!(!line.is_empty(), "the agent ended early: {lines:?}");
        lines.push(line);
    }
    thread::sleep(Duration::from_millis(300));
    fs::write(&setup.state, "prepared\n").unwrap();
    let status = wait(&mut child);
    let rest: Vec<String> = out.lines().map(Result::unwrap).collect();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let stdout = format!("{}{}", lines.concat(), rest.join("\n"));
    // The kexec was refused (KHO off here): a failed hook, and the cancel cannot reach a
    // device here.
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let value = checkpoint::read(&checkpoint::checkpoint_path(&setup.work)).unwrap();
    assert!(
        stdout.contains(&format!("agent: checkpointed counter {value}")),
        "{stdout}"
    );
    assert!(
        stderr.contains("agent: hook failed:") && stderr.contains("kexec handover (KHO) is off"),
        "{stderr}"
    );
    assert!(stderr.contains("agent: cannot cancel"), "{stderr}");
}

#[test]
fn the_agent_restores_after_a_live_update() {
    let (agent, counter) = (example("agent"), example("counter"));
    let setup = AgentSetup::new("updated\n", 1);
    checkpoint::write(&setup.work, 41).unwrap();
    let out = setup.agent(&agent, &counter).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("agent: booted by a live update, generation 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent: restored counter from 41"),
        "{stdout}"
    );
    // No device here, so finish fails and the agent stops the workload.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("agent: cannot finish"), "{stderr}");
}

#[test]
fn the_agent_refuses_other_states() {
    let (agent, counter) = (example("agent"), example("counter"));
    let setup = AgentSetup::new("frozen\n", 0);
    let out = setup.agent(&agent, &counter).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("state 'frozen'"));
}
