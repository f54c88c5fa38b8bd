//! `luoctl` end to end, against state files and devices in temporary directories.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use luo_user::State;
use predicates::prelude::*;
use tempfile::TempDir;

/// A bound for every run, so a broken luoctl fails the test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn luoctl() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("luoctl");
    cmd.timeout(RUN_LIMIT)
        .env_remove("LUO_STATE_FILE")
        .env_remove("LUO_DEVICE")
        .env_remove("LUO_PROC_CMDLINE");
    cmd
}

/// A directory with a state file holding what sysfs shows for `state`.
fn state_dir(state: State) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state");
    write_state(&path, state);
    (dir, path)
}

fn write_state(path: &Path, state: State) {
    fs::write(path, format!("{state}\n")).unwrap();
}

#[test]
fn state_prints_the_word() {
    let (_dir, path) = state_dir(State::Prepared);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Prepared));
}

#[test]
fn state_json_is_an_object_with_only_the_state() {
    let (_dir, path) = state_dir(State::Updated);
    let out = luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["state", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value, serde_json::json!({ "state": State::Updated.word() }));
}

#[test]
fn the_state_file_can_come_from_the_environment() {
    let (_dir, path) = state_dir(State::Frozen);
    luoctl()
        .env("LUO_STATE_FILE", &path)
        .arg("state")
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Frozen));
}

#[test]
fn a_missing_state_file_is_exit_1_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent");
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(path.to_string_lossy()))
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn a_directory_as_state_file_is_exit_1_saying_so() {
    let dir = TempDir::new().unwrap();
    luoctl()
        .arg("--state-file")
        .arg(dir.path())
        .arg("state")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(dir.path().to_string_lossy()))
        .stderr(predicate::str::contains("not a directory"));
}

#[test]
fn a_fifo_as_state_file_is_exit_1_instead_of_hanging() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(path.to_string_lossy()))
        .stderr(predicate::str::contains("cannot read"));
}

#[test]
fn garbage_content_is_exit_1_quoting_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state");
    fs::write(&path, "garbage\n").unwrap();
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(path.to_string_lossy()))
        .stderr(predicate::str::contains("unknown state 'garbage'"));
}

#[test]
fn wait_for_the_current_state_prints_it_at_once() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["wait", "prepared,normal", "--timeout", "10s"])
        .timeout(Duration::from_secs(5))
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Normal));
}

#[test]
fn wait_that_times_out_is_exit_124_with_a_message() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["wait", "prepared", "--timeout", "300ms"])
        .assert()
        .code(124)
        .stdout("")
        .stderr(predicate::str::contains("timed out"))
        .stderr(predicate::str::contains(path.to_string_lossy()));
}

#[test]
fn wait_sees_a_state_written_later() {
    let (_dir, path) = state_dir(State::Normal);
    let writer = {
        let path = path.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            write_state(&path, State::Prepared);
        })
    };
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["--interval", "20ms", "wait", "prepared", "--timeout", "30s"])
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Prepared));
    writer.join().unwrap();
}

#[test]
fn an_unknown_state_word_is_a_usage_error() {
    luoctl()
        .args(["wait", "hibernating"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'hibernating' is not a state"));
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    luoctl()
        .args(["wait", "normal", "--timeout", "soon"])
        .assert()
        .code(2);
}

#[test]
fn help_explains_states_and_exit_codes() {
    luoctl()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(State::Frozen.word()))
        .stdout(predicate::str::contains("124"));
}

/// A `luoctl watch` child whose ready line was read: rewrites after that are changes.
struct Watching {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    ready: String,
    stderr: thread::JoinHandle<String>,
}

fn start_watch(path: &Path, args: &[&str]) -> Watching {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin!("luoctl"))
        .arg("--state-file")
        .arg(path)
        .args(["--interval", "20ms", "watch", "--idle-timeout", "30s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut ready = String::new();
    stderr.read_line(&mut ready).unwrap();
    // Keep draining stderr so the child never blocks on it.
    let stderr = thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    Watching {
        child,
        stdout,
        ready,
        stderr,
    }
}

impl Watching {
    /// The next line on stdout: the watcher has reported a change.
    fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    /// Waits for the exit; returns the status, the rest of stdout and stderr after the ready
    /// line.
    fn finish(mut self) -> (i32, String, String) {
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).unwrap();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.join().unwrap();
        (status.code().unwrap_or(-1), stdout, stderr)
    }
}

#[test]
fn watch_prints_a_ready_line_then_one_line_per_change() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(&path, &["-n", "1"]);
    assert!(watching.ready.contains("watching"), "{}", watching.ready);
    assert!(
        watching.ready.contains(State::Normal.word()),
        "{}",
        watching.ready
    );

    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();

    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let (time, states) = lines[0].split_once(' ').unwrap();
    assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    assert!(time.ends_with('Z'), "not UTC: {time}");
    assert_eq!(states, format!("{} -> {}", State::Normal, State::Prepared));
}

#[test]
fn watch_json_prints_json_lines() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(&path, &["--json", "-n", "1"]);
    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();

    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(stdout.trim_end()).unwrap();
    assert_eq!(value["seq"], 1);
    assert_eq!(value["prev"], State::Normal.word());
    assert_eq!(value["state"], State::Prepared.word());
    assert!(humantime::parse_rfc3339(value["time"].as_str().unwrap()).is_ok());
}

#[test]
fn watch_exec_runs_the_command_with_the_change_in_its_environment() {
    let (dir, path) = state_dir(State::Normal);
    let out = dir.path().join("exec-out");
    let script = format!(
        "echo \"$LUO_PREV_STATE $LUO_STATE $LUO_SEQ\" > '{}'",
        out.display()
    );
    let watching = start_watch(&path, &["-n", "1", "--exec", "sh", "-c", &script]);
    write_state(&path, State::Prepared);
    let (code, _, _) = watching.finish();

    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        format!("{} {} 1\n", State::Normal, State::Prepared)
    );
}

#[test]
fn watch_reports_a_failing_command_and_goes_on() {
    let (_dir, path) = state_dir(State::Normal);
    let mut watching = start_watch(&path, &["-n", "2", "--exec", "false"]);
    write_state(&path, State::Prepared);
    let first = watching.next_line();
    write_state(&path, State::Normal);
    let (code, rest, stderr) = watching.finish();

    assert_eq!(code, 0);
    assert!(
        first.ends_with(&format!("{} -> {}\n", State::Normal, State::Prepared)),
        "{first}"
    );
    assert!(
        rest.ends_with(&format!("{} -> {}\n", State::Prepared, State::Normal)),
        "{rest}"
    );
    assert_eq!(stderr.matches("'false' failed").count(), 2, "{stderr}");
}

#[test]
fn watch_idle_timeout_is_exit_124_with_a_message() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["watch", "--idle-timeout", "300ms"])
        .assert()
        .code(124)
        .stdout("")
        .stderr(predicate::str::contains("no change"))
        .stderr(predicate::str::contains(path.to_string_lossy()));
}

#[test]
fn watch_on_a_missing_file_is_exit_1() {
    let dir = TempDir::new().unwrap();
    luoctl()
        .arg("--state-file")
        .arg(dir.path().join("absent"))
        .arg("watch")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn prepare_without_the_device_says_the_module_is_not_loaded() {
    let dir = TempDir::new().unwrap();
    let device = dir.path().join("liveupdate");
    luoctl()
        .arg("--device")
        .arg(&device)
        .arg("prepare")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(device.to_string_lossy()))
        .stderr(predicate::str::contains("module is not loaded"));
}

#[test]
fn cancel_on_a_file_that_is_not_the_device_says_so() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .env("LUO_DEVICE", &path)
        .arg("cancel")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(path.to_string_lossy()))
        .stderr(predicate::str::contains(
            "not the live update control device",
        ));
}

#[test]
fn completions_and_man_page_are_generated() {
    luoctl()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("luoctl"));
    luoctl()
        .arg("man")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(".TH"));
}

/// A directory holding a copy of a kernel command line.
fn cmdline_dir(cmdline: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("cmdline");
    fs::write(&path, cmdline).unwrap();
    (dir, path)
}

#[test]
fn handover_prints_0_after_a_cold_boot() {
    let (_dir, path) = cmdline_dir("console=ttyS0 root=/dev/vda ro\n");
    luoctl()
        .arg("handover")
        .arg("--cmdline-file")
        .arg(&path)
        .assert()
        .code(0)
        .stdout("0\n")
        .stderr("");
}

#[test]
fn handover_prints_the_generation_of_the_marker() {
    let (_dir, path) = cmdline_dir("console=ttyS0 luo.handover=3 ro\n");
    luoctl()
        .arg("handover")
        .arg("--cmdline-file")
        .arg(&path)
        .assert()
        .code(0)
        .stdout("3\n");
    // The same file through the environment.
    luoctl()
        .env("LUO_PROC_CMDLINE", &path)
        .arg("handover")
        .assert()
        .code(0)
        .stdout("3\n");
}

#[test]
fn handover_with_a_malformed_marker_is_exit_1_naming_it() {
    for cmdline in [
        "ro luo.handover=x\n",
        "luo.handover=0\n",
        "luo.handover=1 luo.handover=2\n",
    ] {
        let (_dir, path) = cmdline_dir(cmdline);
        luoctl()
            .arg("handover")
            .arg("--cmdline-file")
            .arg(&path)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(path.to_string_lossy()))
            .stderr(predicate::str::contains("luo.handover="));
    }
}

#[test]
fn handover_without_the_file_is_exit_1_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent");
    luoctl()
        .arg("handover")
        .arg("--cmdline-file")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("kernel command line"))
        .stderr(predicate::str::contains(path.to_string_lossy()));
}

/// A temporary setup for `luoctl kexec`: a state file, a command line, a kernel image, an
/// initrd and a fake kexec that appends its arguments (one a line) to `args` and then, for
/// `-e`, fails the way a refused reboot does.
struct KexecSetup {
    dir: TempDir,
    state: PathBuf,
    cmdline: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    kexec: PathBuf,
    args: PathBuf,
}

impl KexecSetup {
    fn new(state: State, cmdline: &str, load_status: u8) -> KexecSetup {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let path = |name: &str| dir.path().join(name);
        let setup = KexecSetup {
            state: path("state"),
            cmdline: path("cmdline"),
            kernel: path("bzImage"),
            initrd: path("initrd.img"),
            kexec: path("kexec"),
            args: path("args"),
            dir,
        };
        write_state(&setup.state, state);
        fs::write(&setup.cmdline, cmdline).unwrap();
        fs::write(&setup.kernel, b"not really a kernel").unwrap();
        fs::write(&setup.initrd, b"not really an initrd").unwrap();
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$@\" >> '{args}'\n\
             echo -- >> '{args}'\n\
             if [ \"$1\" = -e ]; then echo 'kexec_load failed: test machine' >&2; exit 1; fi\n\
             if [ {load_status} -ne 0 ]; then echo 'Cannot determine the file type' >&2; fi\n\
             exit {load_status}\n",
            args = setup.args.display()
        );
        let tmp = setup.dir.path().join("kexec.tmp");
        fs::write(&tmp, script).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &setup.kexec).unwrap();
        setup
    }

    fn luoctl(&self) -> Command {
        let mut cmd = luoctl();
        cmd.arg("--state-file")
            .arg(&self.state)
            .arg("--cmdline-file")
            .arg(&self.cmdline)
            .arg("kexec")
            .arg(&self.kernel)
            .arg("--kexec-bin")
            .arg(&self.kexec);
        cmd
    }

    /// The fake kexec's calls, each a list of arguments.
    fn calls(&self) -> Vec<Vec<String>> {
        let Ok(text) = fs::read_to_string(&self.args) else {
            return Vec::new();
        };
        text.split_terminator("--\n")
            .map(|call| call.lines().map(str::to_string).collect())
            .collect()
    }
}

#[test]
fn kexec_in_normal_is_refused_naming_the_state_and_prepare() {
    let setup = KexecSetup::new(State::Normal, "ro\n", 0);
    setup
        .luoctl()
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("'normal'"))
        .stderr(predicate::str::contains("luoctl prepare"))
        .stderr(predicate::str::contains(setup.state.to_string_lossy()));
    assert!(setup.calls().is_empty(), "kexec ran: {:?}", setup.calls());
}

#[test]
fn kexec_in_other_states_is_refused() {
    for state in [State::Frozen, State::Updated] {
        let setup = KexecSetup::new(state, "ro\n", 0);
        setup
            .luoctl()
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!("'{state}'")));
        assert!(setup.calls().is_empty());
    }
}

#[test]
fn kexec_load_only_loads_with_the_next_marker() {
    let setup = KexecSetup::new(
        State::Prepared,
        "console=ttyS0 luo.handover=2 virtme.exec=`ZWNobyBoaQo=` ro\n",
        0,
    );
    setup
        .luoctl()
        .arg("--load-only")
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicate::str::contains("live update generation 3"));
    let kernel = setup.kernel.to_string_lossy().into_owned();
    assert_eq!(
        setup.calls(),
        [vec![
            "-l".to_string(),
            kernel,
            "--command-line=console=ttyS0 virtme.exec=`ZWNobyBoaQo=` ro luo.handover=3".into(),
        ]]
    );
}

#[test]
fn kexec_load_only_passes_the_initrd_and_appended_words() {
    let setup = KexecSetup::new(State::Prepared, "ro\n", 0);
    setup
        .luoctl()
        .arg("--load-only")
        .arg("--initrd")
        .arg(&setup.initrd)
        .args(["--append", "quiet loglevel=3", "--append", "panic=5"])
        .assert()
        .code(0);
    assert_eq!(
        setup.calls(),
        [vec![
            "-l".to_string(),
            setup.kernel.to_string_lossy().into_owned(),
            "--command-line=ro quiet loglevel=3 panic=5 luo.handover=1".into(),
            format!("--initrd={}", setup.initrd.display()),
        ]]
    );
}

#[test]
fn kexec_refuses_to_append_the_marker() {
    let setup = KexecSetup::new(State::Prepared, "ro\n", 0);
    setup
        .luoctl()
        .args(["--load-only", "--append", "luo.handover=9"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "'luo.handover=9' cannot be appended",
        ));
    assert!(setup.calls().is_empty());
}

#[test]
fn kexec_with_a_malformed_marker_is_refused() {
    let setup = KexecSetup::new(State::Prepared, "ro luo.handover=oops\n", 0);
    setup
        .luoctl()
        .arg("--load-only")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("luo.handover=oops"))
        .stderr(predicate::str::contains(setup.cmdline.to_string_lossy()));
    assert!(setup.calls().is_empty());
}

#[test]
fn kexec_that_returns_is_exit_1_with_its_message_and_the_state() {
    let setup = KexecSetup::new(State::Prepared, "ro luo.handover=1\n", 0);
    setup
        .luoctl()
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "luoctl: kexec into {}, live update generation 2\n",
            setup.kernel.display()
        )))
        .stderr(predicate::str::contains("kexec_load failed: test machine"))
        .stderr(predicate::str::contains("still 'prepared'"));
    // load, execute, then the unload: the marked image must not outlive the failure.
    let calls = setup.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1], ["-e"]);
    assert_eq!(calls[2], ["-u"]);
}

#[test]
fn a_failed_load_is_exit_1_with_kexec_message_and_no_reboot() {
    let setup = KexecSetup::new(State::Prepared, "ro\n", 3);
    setup
        .luoctl()
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Cannot determine the file type"))
        .stderr(predicate::str::contains("not loaded"));
    assert_eq!(setup.calls().len(), 1, "kexec -e ran after a failed load");
}

#[test]
fn a_missing_kexec_says_to_install_kexec_tools() {
    let setup = KexecSetup::new(State::Prepared, "ro\n", 0);
    luoctl()
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--cmdline-file")
        .arg(&setup.cmdline)
        .arg("kexec")
        .arg(&setup.kernel)
        .arg("--kexec-bin")
        .arg(setup.dir.path().join("no-such-kexec"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("install kexec-tools"));
}

#[test]
fn a_missing_kernel_is_exit_1_naming_it() {
    let setup = KexecSetup::new(State::Prepared, "ro\n", 0);
    let missing = setup.dir.path().join("no-such-bzImage");
    luoctl()
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--cmdline-file")
        .arg(&setup.cmdline)
        .arg("kexec")
        .arg(&missing)
        .arg("--kexec-bin")
        .arg(&setup.kexec)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(missing.to_string_lossy()));
    assert!(setup.calls().is_empty());
}
