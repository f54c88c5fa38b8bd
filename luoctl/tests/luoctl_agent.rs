//! `luoctl agent` on the host, on a state file in a temporary directory: the order of hooks,
//! their environment and time limit, what a failure leads to, the log, and READY=1 to systemd
//! over a real datagram socket. The host has no control device, so CANCEL and FINISH fail
//! here and the log says so; the guest test `agent` sends them for real.

mod cli;
// The types the demo's timeline reads these records with (xtask includes the same file), so a
// change of the records that the timeline would no longer read fails here, where they are
// made.
mod records;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::thread;
use std::time::Duration;

use cli::{luoctl_copy_in, luoctl_std, script, write_state};
use luo_user::State;
use tempfile::TempDir;

/// A state file, the generation beside it, a hooks tree, a log the hooks append to, and a
/// device path where nothing is.
struct Setup {
    dir: TempDir,
    state: PathBuf,
    hooks: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new(state: State) -> Setup {
        let dir = TempDir::new().unwrap();
        let setup = Setup {
            state: dir.path().join("state"),
            hooks: dir.path().join("hooks"),
            log: dir.path().join("log"),
            dir,
        };
        write_state(&setup.state, state);
        fs::write(setup.dir.path().join("generation"), "1\n").unwrap();
        for state in State::OBSERVABLE {
            fs::create_dir_all(setup.hooks.join(format!("{state}.d"))).unwrap();
        }
        setup
    }

    /// A hook `STATE.d/NAME` that appends `NAME` to the log, then runs `then`.
    fn hook(&self, state: State, name: &str, then: &str) {
        let path = self.hooks.join(format!("{state}.d")).join(name);
        script(
            &path,
            &format!("echo {name} >> '{}'\n{then}", self.log.display()),
        );
    }

    /// The hooks that ran, in order.
    fn ran(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn agent(&self, args: &[&str]) -> std::process::Command {
        // Each test's own socket: tests run in parallel, and not as the system's agent.
        self.agent_at(&self.dir.path().join("agent.sock"), args)
    }

    /// [`Setup::agent`], listening at `socket`.
    fn agent_at(&self, socket: &Path, args: &[&str]) -> std::process::Command {
        let mut command = luoctl_std();
        command
            .arg("--state-file")
            .arg(&self.state)
            .arg("--generation-file")
            .arg(self.dir.path().join("generation"))
            .arg("--device")
            .arg(self.dir.path().join("no-device"))
            .arg("agent")
            .arg("--hooks-dir")
            .arg(&self.hooks)
            .arg("--socket")
            .arg(socket)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs the agent until it has acted on `count` states; it must end by itself.
    fn run(&self, count: u64, args: &[&str]) -> Output {
        self.run_with(count, args, |_| {})
    }

    /// [`Setup::run`], with more arguments after `args` added by `more`.
    fn run_with(
        &self,
        count: u64,
        args: &[&str],
        more: impl FnOnce(&mut std::process::Command),
    ) -> Output {
        let mut command = self.agent(args);
        more(&mut command);
        let child = command
            .args(["-n", &count.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish_within(child, Duration::from_secs(60))
    }
}

/// Waits for `child`'s output, killing it if it runs longer than `limit`.
fn finish_within(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let killer = thread::spawn(move || {
        thread::sleep(limit);
        // Still running after the limit: a hang. Ending it fails the test instead.
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output().unwrap();
    drop(killer);
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Takes `child`'s stderr and reads it up to the agent's ready line (after the socket's line):
/// from then on, a rewrite of the state file is a change the agent sees. Returns the rest.
fn read_past_ready_line(child: &mut Child) -> BufReader<std::process::ChildStderr> {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    read_until(&mut stderr, "watching");
    stderr
}

/// Reads `stderr` up to and including the first line that contains `needle`, and returns
/// that line; fails the test if the output ends first.
fn read_until(stderr: &mut impl BufRead, needle: &str) -> String {
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no line with '{needle}'"
        );
    }
    line
}

#[test]
fn prepared_hooks_run_in_the_byte_order_of_their_names() {
    let setup = Setup::new(State::Prepared);
    for name in ["20-second", "10-first", "30-third", "skipped.bak"] {
        setup.hook(State::Prepared, name, "");
    }
    let out = setup.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(setup.ran(), ["10-first", "20-second", "30-third"]);
    // The agent's socket goes with it.
    assert!(!setup.dir.path().join("agent.sock").exists());
}

#[test]
fn a_hook_gets_the_change_in_its_environment() {
    let setup = Setup::new(State::Normal);
    let env_file = setup.dir.path().join("env");
    setup.hook(
        State::Prepared,
        "10-env",
        &format!("env | grep '^LUO_' | sort > '{}'", env_file.display()),
    );
    let mut child = setup
        .agent(&["-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = read_past_ready_line(&mut child);
    write_state(&setup.state, State::Prepared);
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let out = finish_within(child, Duration::from_secs(60));
    assert!(out.status.success(), "{rest}");
    let env = fs::read_to_string(&env_file).unwrap();
    let get = |name: &str| {
        env.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    assert_eq!(get("LUO_STATE").as_deref(), Some("prepared"));
    assert_eq!(get("LUO_PREV_STATE").as_deref(), Some("normal"));
    assert_eq!(get("LUO_SEQ").as_deref(), Some("1"));
    assert_eq!(get("LUO_GENERATION").as_deref(), Some("1"));
    assert_eq!(
        get("LUO_STATE_FILE").as_deref(),
        Some(&*setup.state.to_string_lossy())
    );
    let time = get("LUO_TIME").unwrap();
    assert!(humantime::parse_rfc3339(&time).is_ok(), "{time}");
    // The record on stdout carries the same time: when the change was read.
    assert!(
        text(&out.stdout).starts_with(&time),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_failing_prepared_hook_stops_the_rest_and_cancels_naming_it() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-save", "");
    setup.hook(State::Prepared, "20-broken", "exit 7");
    setup.hook(State::Prepared, "30-never", "");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(setup.ran(), ["10-save", "20-broken"]);
    assert!(
        stderr.contains("prepared.d/20-broken failed (exit status: 7)"),
        "{stderr}"
    );
    // The cancel was sent to the device, which this host does not have.
    assert!(
        stderr.contains("prepared.d/20-broken failed, but cancel could not be sent"),
        "{stderr}"
    );
    assert!(stderr.contains("no-device"), "{stderr}");
}

#[test]
fn a_hook_past_its_time_limit_is_stopped_and_counts_as_failed() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-hangs", "sleep 30");
    setup.hook(State::Prepared, "20-never", "");
    let started = std::time::Instant::now();
    let out = setup.run(1, &["--hook-timeout", "300ms"]);
    let stderr = text(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(setup.ran(), ["10-hangs"]);
    assert!(
        stderr.contains("prepared.d/10-hangs timed out after 300ms"),
        "{stderr}"
    );
    assert!(stderr.contains("cancel could not be sent"), "{stderr}");
}

#[test]
fn a_failing_updated_hook_withholds_finish() {
    let setup = Setup::new(State::Updated);
    setup.hook(State::Updated, "10-restore", "exit 1");
    setup.hook(State::Updated, "20-never", "");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(setup.ran(), ["10-restore"]);
    assert!(stderr.contains("no finish"), "{stderr}");
    assert!(stderr.contains("the state stays updated"), "{stderr}");
    assert!(!stderr.contains("sent finish"), "{stderr}");
}

#[test]
fn finish_follows_the_updated_hooks_unless_no_finish() {
    let setup = Setup::new(State::Updated);
    setup.hook(State::Updated, "10-restore", "");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("every updated hook succeeded, but finish could not be sent"),
        "{stderr}"
    );

    let out = setup.run(1, &["--no-finish"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not sending finish (--no-finish)"),
        "{stderr}"
    );
}

#[test]
fn hook_output_goes_to_stderr_and_records_to_stdout() {
    let setup = Setup::new(State::Updated);
    setup.hook(
        State::Updated,
        "10-talk",
        "echo hook-stdout; echo hook-stderr >&2",
    );
    let out = setup.run(1, &["--json", "--no-finish"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook-stdout") && stderr.contains("hook-stderr"),
        "{stderr}"
    );
    let first = stdout.lines().next().unwrap_or_default();
    let record: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(record["state"], "updated");
    assert_eq!(record["prev"], serde_json::Value::Null);
}

#[test]
fn the_demos_timeline_reads_the_state_and_ready_records() {
    use records::{AgentRecord, Record};
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-save", "true");
    let out = setup.run(1, &["--json"]);
    let stdout = text(&out.stdout);
    let records: Vec<Record> = stdout
        .lines()
        .map(|line| Record::parse(line).unwrap_or_else(|| panic!("not read: {line}")))
        .collect();
    assert_eq!(
        records,
        [
            Record::State {
                state: "prepared".to_owned()
            },
            Record::Agent(AgentRecord::Other),
            Record::Agent(AgentRecord::Ready),
        ],
        "{stdout}"
    );
}

#[test]
fn the_log_is_one_plain_line_per_event_when_stderr_is_not_a_terminal() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-fails", "exit 1");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in a pipe: {stderr:?}"
    );
    for line in stderr.lines() {
        assert!(line.starts_with("luoctl agent: "), "{line}");
    }
}

#[test]
fn a_file_that_is_not_executable_is_skipped_with_a_warning() {
    let setup = Setup::new(State::Prepared);
    let plain = setup.hooks.join("prepared.d/10-plain");
    fs::write(&plain, "#!/bin/sh\n").unwrap();
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("skipping {}: not executable", plain.display())),
        "{stderr}"
    );
}

#[test]
fn ready_goes_to_the_notify_socket_after_the_first_read() {
    let setup = Setup::new(State::Normal);
    let socket_path = setup.dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let leaked = setup.dir.path().join("hook-env");
    setup.hook(
        State::Prepared,
        "10-env",
        &format!(
            "echo \"${{NOTIFY_SOCKET:-unset}}\" > '{}'",
            leaked.display()
        ),
    );
    let child = setup
        .agent(&["-n", "1"])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let len = socket.recv(&mut buf).expect("READY=1 within 30 s");
    let ready = text(&buf[..len]);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS=state normal"), "{ready:?}");
    // Ready means the first read happened, so this rewrite is seen as a change.
    write_state(&setup.state, State::Prepared);
    let len = socket.recv(&mut buf).unwrap();
    assert_eq!(text(&buf[..len]), "STATUS=state prepared");
    let out = finish_within(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Only the agent speaks to systemd.
    assert_eq!(fs::read_to_string(&leaked).unwrap(), "unset\n");
}

#[test]
fn without_follow_a_missing_state_file_given_by_hand_is_exit_7() {
    let setup = Setup::new(State::Normal);
    fs::remove_file(&setup.state).unwrap();
    let out = setup.run(1, &[]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
}

#[test]
fn with_follow_the_agent_waits_for_the_state_file_and_acts_when_it_comes() {
    let setup = Setup::new(State::Normal);
    fs::remove_file(&setup.state).unwrap();
    setup.hook(State::Updated, "10-restore", "");
    let child = setup
        .agent(&["--follow", "--no-finish", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    write_state(&setup.state, State::Updated);
    let out = finish_within(child, Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting for it to come back"), "{stderr}");
    assert_eq!(setup.ran(), ["10-restore"]);
}

/// The hooks tree shipped in contrib/ has the layout the agent reads.
#[test]
fn the_example_hooks_tree_lists_hooks_for_each_state() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/hooks");
    let hooks = luo_user::hooks::HooksDir::open(&root).unwrap();
    for state in [State::Prepared, State::Updated, State::Normal] {
        let listing = hooks.list(state).unwrap();
        assert!(
            !listing.hooks.is_empty() && listing.skipped.is_empty(),
            "{state}: {listing:?}"
        );
    }
}

/// Whether process `pid` is gone (or a zombie, dead and waiting for its parent).
fn gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Reads the pid a hook wrote into `path`, waiting for it.
fn pid_in(path: &Path) -> String {
    for _ in 0..500 {
        if let Ok(pid) = fs::read_to_string(path) {
            if pid.ends_with('\n') {
                return pid.trim().to_owned();
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("no pid in {}", path.display());
}

/// A hook body that starts a grandchild in a session of its own, ignoring SIGTERM, writes its
/// pid into `pid_file`, and waits for it.
fn escaping_grandchild(pid_file: &Path) -> String {
    format!(
        "setsid sh -c 'trap \"\" TERM; echo $$ > {}; exec sleep 300' &\nwait",
        pid_file.display()
    )
}

#[test]
fn a_timeout_stops_a_grandchild_that_called_setsid_and_ignores_sigterm() {
    let setup = Setup::new(State::Prepared);
    let pid_file = setup.dir.path().join("grandchild");
    setup.hook(
        State::Prepared,
        "10-escape",
        &escaping_grandchild(&pid_file),
    );
    let out = setup.run(1, &["--hook-timeout", "1s"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");
    let pid = pid_in(&pid_file);
    assert!(
        gone(&pid),
        "the grandchild {pid} outlived its hook's timeout"
    );
}

#[test]
fn sigterm_to_the_agent_stops_the_running_hook_and_what_it_started() {
    let setup = Setup::new(State::Prepared);
    let pid_file = setup.dir.path().join("grandchild");
    setup.hook(
        State::Prepared,
        "10-escape",
        &escaping_grandchild(&pid_file),
    );
    let child = setup
        .agent(&["-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pid_in(&pid_file);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(15), "{}", text(&out.stderr));
    assert!(gone(&pid), "the grandchild {pid} outlived the agent");
    // Stopped, not failed: no cancel was attempted.
    assert!(
        !text(&out.stderr).contains("cancel"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hooks_do_not_get_the_services_own_systemd_variables() {
    let setup = Setup::new(State::Prepared);
    let env_file = setup.dir.path().join("env");
    setup.hook(
        State::Prepared,
        "10-env",
        &format!("env > '{}'", env_file.display()),
    );
    let out = setup
        .agent(&["-n", "1"])
        .env("WATCHDOG_USEC", "1000000")
        .env("WATCHDOG_PID", "1")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .env("KEPT", "yes")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("KEPT=yes\n"), "{env}");
    for name in ["WATCHDOG_", "LISTEN_", "NOTIFY_SOCKET"] {
        assert!(!env.contains(name), "{name} reached the hook:\n{env}");
    }
}

#[test]
fn a_binary_hook_runs_from_the_checked_descriptor() {
    let setup = Setup::new(State::Prepared);
    let hook = setup.hooks.join("prepared.d/10-env");
    fs::copy("/usr/bin/env", &hook).unwrap();
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("LUO_STATE=prepared"), "{stderr}");
}

#[test]
fn a_script_hook_is_read_from_its_descriptor_not_its_path() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-zero", "echo \"zero=$0\"");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("zero=/dev/fd/"), "{stderr}");
}

#[test]
fn a_missing_hooks_directory_stops_the_agent_with_exit_6() {
    let setup = Setup::new(State::Prepared);
    fs::remove_dir_all(&setup.hooks).unwrap();
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains(&setup.hooks.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn a_group_writable_hooks_directory_stops_the_agent_with_the_fix() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-save", "");
    fs::set_permissions(&setup.hooks, fs::Permissions::from_mode(0o775)).unwrap();
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", setup.hooks.display())),
        "{stderr}"
    );
    assert!(setup.ran().is_empty());
}

#[test]
fn a_hook_owned_by_another_user_is_refused_and_counts_as_failed() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-save", "");
    setup.hook(State::Prepared, "20-theirs", "");
    std::os::unix::fs::chown(setup.hooks.join("prepared.d/20-theirs"), Some(65534), None).unwrap();
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("refusing"))
        .unwrap_or_else(|| panic!("no refusal in:\n{stderr}"));
    assert!(line.ends_with(&format!(
        "chown root {}; counts as a failed hook",
        setup.hooks.join("prepared.d/20-theirs").display()
    )));
    // Nothing of a tree found tampered with runs, and the live update is cancelled.
    assert!(setup.ran().is_empty());
    assert!(stderr.contains("cancel"), "{stderr}");
}

/// A file where the control device should be: it opens, but every ioctl fails (`ENOTTY`), as
/// a device would that fails for a reason of the moment.
fn failing_device(setup: &Setup) -> PathBuf {
    let device = setup.dir.path().join("failing-device");
    fs::write(&device, b"").unwrap();
    device
}

#[test]
fn a_failed_hook_makes_the_agent_exit_8() {
    let setup = Setup::new(State::Updated);
    setup.hook(State::Updated, "10-restore", "exit 1");
    let out = setup.run(1, &["--no-finish"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
}

#[test]
fn a_cancel_that_cannot_be_sent_makes_the_agent_exit_9() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-broken", "exit 1");
    let out = setup.run(1, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("gave up"), "{stderr}");
}

#[test]
fn a_failed_cancel_is_retried_until_the_state_no_longer_calls_for_it() {
    let setup = Setup::new(State::Prepared);
    // The hook fails after someone else's cancel: the retry finds `normal` and stops.
    setup.hook(
        State::Prepared,
        "10-broken",
        &format!("echo normal > '{}'; exit 1", setup.state.display()),
    );
    let device = failing_device(&setup);
    let out = setup.run_with(1, &["--json"], |command| {
        command.arg("--device").arg(&device);
    });
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cancel could not be sent (try 1)")
            && stderr.contains("trying again in 100ms"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cancel was not sent, but the state is now normal"),
        "{stderr}"
    );
    // The hook failed, the cancel was no longer needed: 8, not 9.
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap_or("state"))
        .collect();
    assert_eq!(kinds, ["state", "hook", "retry", "cancel"], "{records:?}");
    assert!(records.iter().all(|r| r["v"] == 1), "{records:?}");
    assert_eq!(records[1]["hook"], "prepared.d/10-broken");
    assert_eq!(records[1]["result"], "failed");
    assert_eq!(records[1]["exit_status"], 1);
    assert!(records[1]["duration_ms"].is_u64(), "{records:?}");
    assert_eq!(records[2]["event"], "cancel");
    assert_eq!(records[2]["attempt"], 1);
    assert_eq!(records[2]["delay_ms"], 100);
    assert_eq!(records[3]["result"], "not_needed");
    assert_eq!(records[3]["now"], "normal");
    assert_eq!(records[3]["because"], "prepared.d/10-broken");
    // Only state records carry "state": readers that pick it out of each line see states.
    assert!(records[1..].iter().all(|r| r.get("state").is_none()));
}

#[test]
fn a_hook_killed_by_a_signal_is_recorded_with_the_signal() {
    let setup = Setup::new(State::Normal);
    setup.hook(State::Normal, "10-killed", "kill -9 $$");
    let out = setup.run(1, &["--json", "--initial"]);
    let hook = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|r| r["record"] == "hook")
        .unwrap();
    assert_eq!(hook["result"], "failed");
    assert_eq!(hook["signal"], 9);
    assert!(hook.get("exit_status").is_none());
}

#[test]
fn every_log_line_is_one_line_even_for_a_path_with_a_newline() {
    let setup = Setup::new(State::Prepared);
    let odd = setup.dir.path().join("hooks\nsecond line");
    fs::rename(&setup.hooks, &odd).unwrap();
    let mut command = luoctl_std();
    command
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--device")
        .arg(setup.dir.path().join("no-device"))
        .arg("agent")
        .arg("--hooks-dir")
        .arg(&odd)
        .args(["-n", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = finish_within(command.spawn().unwrap(), Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("hooks\\nsecond line"), "{stderr}");
    for line in stderr.lines() {
        assert!(line.starts_with("luoctl agent: "), "{line:?} in {stderr:?}");
    }
}

/// `luoctl kexec --load-only` of a file that is no kernel, against the agent of `setup`.
fn kexec_against(setup: &Setup) -> Output {
    kexec_with(setup, &setup.dir.path().join("agent.sock"), "30")
}

/// [`kexec_against`] the agent at `socket`, waiting at most `wait` for the hooks.
fn kexec_with(setup: &Setup, socket: &Path, wait: &str) -> Output {
    let debugfs = setup.dir.path().join("debug");
    fs::create_dir_all(debugfs.join("kho")).unwrap();
    let cmdline = setup.dir.path().join("cmdline");
    fs::write(&cmdline, "console=ttyS0\n").unwrap();
    let kernel = setup.dir.path().join("bzImage");
    fs::write(&kernel, b"not really a kernel").unwrap();
    let child = luoctl_std()
        .arg("--state-file")
        .arg(&setup.state)
        .args(["kexec", "--load-only", "--wait-timeout", wait])
        .arg("--debugfs")
        .arg(&debugfs)
        .arg("--cmdline-file")
        .arg(&cmdline)
        .arg("--socket")
        .arg(socket)
        .arg(&kernel)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish_within(child, Duration::from_secs(60))
}

#[test]
fn kexec_waits_for_the_prepared_hooks_and_refuses_when_one_fails() {
    for (last, succeeds) in [("", true), ("exit 3", false)] {
        let setup = Setup::new(State::Normal);
        let marker = setup.dir.path().join("saved");
        // The marker is written after the sleep, at the hook's very end.
        let body = format!("sleep 1; touch '{}'; {last}", marker.display());
        setup.hook(State::Prepared, "10-save", &body);
        // Two states: it must outlive the kexec's wait, which `-n 1` would end.
        let mut agent = setup
            .agent(&["-n", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Held open to the end, unread: the agent's later lines are not checked here.
        let _stderr = read_past_ready_line(&mut agent);
        write_state(&setup.state, State::Prepared);
        // The hook sleeps: kexec connects while it runs, and must wait for its end.
        let out = kexec_against(&setup);
        let err = text(&out.stderr);
        if succeeds {
            assert!(err.contains("the prepared hooks succeeded"), "{err}");
            // Succeeded means ended: the hook's last step is done.
            assert!(
                marker.exists(),
                "kexec went on before the hook ended: {err}"
            );
            // It went on to the load, which the file that is no kernel fails.
            assert!(!out.status.success(), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(10), "{err}");
            assert!(err.contains("prepared.d/10-save failed"), "{err}");
        }
        assert_eq!(setup.ran(), ["10-save"]);
        write_state(&setup.state, State::Normal);
        let _ = finish_within(agent, Duration::from_secs(60));
    }
}

#[test]
fn kexec_without_an_agent_is_refused_with_what_to_start() {
    let setup = Setup::new(State::Prepared);
    let out = kexec_against(&setup);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains("no agent listens at"), "{err}");
    assert!(err.contains("start 'luoctl agent'"), "{err}");
}

/// Under systemd, a root storage daemon's stdout and stderr outlive journald: the agent of the
/// observer flavour is not stopped by `systemctl kexec`'s shutdown, and must still hold its
/// sessions when its log writes fail with EPIPE. It keeps acting on the states.
#[test]
fn the_agent_keeps_going_when_its_output_is_a_pipe_nobody_reads() {
    let setup = Setup::new(State::Normal);
    setup.hook(State::Prepared, "10-save", "");
    setup.hook(State::Normal, "10-resume", "");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = setup
        .agent(&["--follow", "--no-finish", "--json"])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let wait_for = |name: &str| {
        for _ in 0..300 {
            if setup.ran().iter().any(|ran| ran == name) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("{name} did not run: {:?}", setup.ran());
    };
    let resumed = || setup.ran().iter().filter(|ran| *ran == "10-resume").count();
    thread::sleep(Duration::from_millis(500));
    // Each change makes the agent write a record on stdout and log lines on stderr, which fail.
    write_state(&setup.state, State::Prepared);
    wait_for("10-save");
    let before = resumed();
    write_state(&setup.state, State::Normal);
    for _ in 0..300 {
        if resumed() > before {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        resumed() > before,
        "normal.d did not run again: {:?}",
        setup.ran()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the agent stopped when its output failed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn with_the_counter_the_agent_records_the_count_and_says_what_it_missed() {
    let setup = Setup::new(State::Normal);
    let counter = setup.dir.path().join("transitions");
    fs::write(&counter, "0\n").unwrap();
    setup.hook(State::Prepared, "10-save", "");
    let mut agent = setup
        .agent(&["-n", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = read_past_ready_line(&mut agent);
    // Two changes (a prepare and its cancel) and a third prepare, between two reads: the
    // agent wakes once, on `prepared`, at count 3. The counter first, as the kernel stores.
    fs::write(&counter, "3\n").unwrap();
    write_state(&setup.state, State::Prepared);
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let out = finish_within(agent, Duration::from_secs(60));
    let records = text(&out.stdout);
    assert!(
        records.contains(r#""state":"prepared","transitions":3"#),
        "{records}"
    );
    assert!(
        records.contains(r#""record":"missed","missed":2,"from":"normal","to":"prepared""#),
        "{records}"
    );
    assert!(records.contains(r#""record":"ready""#), "{records}");
    assert!(
        rest.contains("missed: 2 change(s) between normal and prepared"),
        "{rest}"
    );
}

/// A state file of the observer flavour: the `flavour` file beside it says so.
fn observer(setup: &Setup) {
    fs::write(setup.dir.path().join("flavour"), "observer\n").unwrap();
}

/// Waits until `path` exists.
fn wait_for_path(path: &Path) {
    for _ in 0..500 {
        if path.exists() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not appear", path.display());
}

#[test]
fn in_the_observer_flavour_finish_asks_the_agent() {
    let setup = Setup::new(State::Normal);
    observer(&setup);
    setup.hook(State::Updated, "10-restore", "exit 1");
    let mut agent = setup
        .agent(&["-n", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = read_past_ready_line(&mut agent);
    write_state(&setup.state, State::Updated);
    // The failed updated hook withholds the agent's own finish, and its log says what to do.
    let line = read_until(&mut stderr, "no finish");
    assert!(line.contains("then run 'luoctl finish'"), "{line}");
    let out = luoctl_std()
        .arg("finish")
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--socket")
        .arg(setup.dir.path().join("agent.sock"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the agent finished 0 restored session(s)"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "updated\n");
    write_state(&setup.state, State::Normal);
    let _ = finish_within(agent, Duration::from_secs(60));
}

#[test]
fn a_socket_directory_others_may_write_stops_the_agent_with_the_fix() {
    let setup = Setup::new(State::Prepared);
    setup.hook(State::Prepared, "10-save", "");
    let run = setup.dir.path().join("run");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o775)).unwrap();
    let child = setup
        .agent_at(&run.join("agent.sock"), &["-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("will not listen in {}", run.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chmod go-w {}", run.display())),
        "{stderr}"
    );
    assert!(!run.join("agent.sock").exists());
    // It stops before acting on any state.
    assert!(setup.ran().is_empty(), "{stderr}");
}

#[test]
fn kexec_does_not_trust_a_listener_of_another_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: running the agent as another user needs root");
        return;
    }
    let setup = Setup::new(State::Prepared);
    // The agent as nobody: it must reach its copy of luoctl, the hooks and the state.
    fs::set_permissions(setup.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let run = setup.dir.path().join("run");
    fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(NOBODY), None).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
    let socket = run.join("agent.sock");
    let mut agent = luoctl_copy_in(setup.dir.path());
    use std::os::unix::process::CommandExt;
    let mut agent = agent
        .uid(NOBODY)
        .gid(NOBODY)
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--generation-file")
        .arg(setup.dir.path().join("generation"))
        .arg("--device")
        .arg(setup.dir.path().join("no-device"))
        .arg("agent")
        .arg("--hooks-dir")
        .arg(&setup.hooks)
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_path(&socket);
    let out = kexec_with(&setup, &socket, "30");
    agent.kill().unwrap();
    agent.wait().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(
        err.contains(&format!(
            "{} belongs to a process of uid {NOBODY}",
            socket.display()
        )),
        "{err}"
    );
    assert!(!err.contains("the prepared hooks succeeded"), "{err}");
}

/// The uid and gid the test runs an agent as, when it runs as root.
const NOBODY: u32 = 65534;

#[test]
fn with_a_counter_that_cannot_be_read_kexec_is_not_told_ready() {
    let setup = Setup::new(State::Normal);
    // A counter that is there but does not read: the state alone would let a mark of an
    // earlier `prepared` pass for this one.
    fs::write(setup.dir.path().join("transitions"), "garbage\n").unwrap();
    setup.hook(State::Prepared, "10-save", "");
    let mut agent = setup
        .agent(&["-n", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = read_past_ready_line(&mut agent);
    write_state(&setup.state, State::Prepared);
    read_until(&mut stderr, "ready for the kexec");
    let out = kexec_with(&setup, &setup.dir.path().join("agent.sock"), "2");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(!err.contains("the prepared hooks succeeded"), "{err}");
    write_state(&setup.state, State::Normal);
    let _ = finish_within(agent, Duration::from_secs(60));
}
