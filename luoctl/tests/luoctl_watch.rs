//! `luoctl watch` end to end on state files in temporary directories: its records, its
//! `--exec` command, `--initial`, `--format`, `-q` and `--follow`.

mod cli;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cli::{luoctl, luoctl_std, state_dir, write_state};
use luo_user::State;
use predicates::prelude::*;

/// A `luoctl watch` child whose ready line was read: rewrites after that are changes.
struct Watching {
    child: Child,
    stdout: BufReader<ChildStdout>,
    ready: String,
    stderr: thread::JoinHandle<String>,
}

fn start_watch(path: &Path, args: &[&str]) -> Watching {
    let mut child = luoctl_std()
        .arg("--state-file")
        .arg(path)
        .args(["watch", "--idle-timeout", "30s"])
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
    let command = format!(
        "echo \"$LUO_PREV_STATE $LUO_STATE $LUO_SEQ $LUO_STATE_FILE $LUO_TIME\" > '{}'",
        out.display()
    );
    let watching = start_watch(&path, &["-n", "1", "--exec", &command]);
    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();

    assert_eq!(code, 0);
    let written = fs::read_to_string(&out).unwrap();
    let words: Vec<&str> = written.split_whitespace().collect();
    assert_eq!(
        words[..4],
        [
            State::Normal.word(),
            State::Prepared.word(),
            "1",
            &*path.to_string_lossy()
        ]
    );
    // LUO_TIME is the record's time: when the change was read.
    assert_eq!(Some(words[4]), stdout.split_whitespace().next(), "{stdout}");
}

#[test]
fn watch_exec_output_never_enters_the_json_stream() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(
        &path,
        &["--json", "-n", "1", "--exec", "echo hook-says-hello"],
    );
    write_state(&path, State::Prepared);
    let (code, stdout, stderr) = watching.finish();

    assert_eq!(code, 0);
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
    }
    assert!(stderr.contains("hook-says-hello"), "{stderr}");
}

#[test]
fn a_slow_exec_command_does_not_delay_the_next_record() {
    let (_dir, path) = state_dir(State::Normal);
    let mut watching = start_watch(&path, &["-n", "2", "--exec", "sleep 3"]);
    write_state(&path, State::Prepared);
    let first = watching.next_line();
    assert!(first.ends_with("normal -> prepared\n"), "{first}");
    let written = Instant::now();
    write_state(&path, State::Normal);
    let second = watching.next_line();
    let waited = written.elapsed();
    assert!(second.ends_with("prepared -> normal\n"), "{second}");
    assert!(
        waited < Duration::from_secs(2),
        "the second record waited {waited:?} for the first command"
    );
    let (code, _, _) = watching.finish();
    assert_eq!(code, 0);
}

#[test]
fn an_exec_command_past_its_timeout_is_stopped_and_reported() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(
        &path,
        &["-n", "1", "--exec", "sleep 30", "--exec-timeout", "200ms"],
    );
    write_state(&path, State::Prepared);
    let started = Instant::now();
    let (code, _, stderr) = watching.finish();
    assert_eq!(code, 0);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(stderr.contains("timed out after 200ms"), "{stderr}");
}

#[test]
fn options_after_exec_are_options() {
    let (_dir, path) = state_dir(State::Normal);
    // Before the fix `-n 1` became arguments of the command, and the watch never ended.
    let watching = start_watch(&path, &["--exec", "true", "-n", "1"]);
    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
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
fn initial_emits_the_current_state_first() {
    let (_dir, path) = state_dir(State::Updated);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["watch", "--initial", "--json", "-n", "1"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "\"seq\":0,\"prev\":null,\"state\":\"updated\"",
        ));
}

#[test]
fn format_shapes_each_record() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(&path, &["-n", "1", "--format", "%n:%p>%s"]);
    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();
    assert_eq!(code, 0);
    assert_eq!(stdout, "1:normal>prepared\n");
}

#[test]
fn quiet_drops_the_ready_line() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["-q", "watch", "--initial", "-n", "1"])
        .assert()
        .code(0)
        .stderr("");
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
fn watch_on_a_missing_file_given_by_hand_is_exit_7() {
    let dir = tempfile::TempDir::new().unwrap();
    luoctl()
        .arg("--state-file")
        .arg(dir.path().join("absent"))
        .arg("watch")
        .assert()
        .code(7)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn a_removed_file_ends_watch_with_exit_5_without_follow() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(&path, &[]);
    fs::remove_file(&path).unwrap();
    let (code, _, stderr) = watching.finish();
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("is gone"), "{stderr}");
}

#[test]
fn follow_waits_for_a_removed_file_and_goes_on_when_it_is_back() {
    let (_dir, path) = state_dir(State::Normal);
    let mut watching = start_watch(&path, &["--follow", "--json", "-n", "2"]);
    write_state(&path, State::Prepared);
    let first: serde_json::Value = serde_json::from_str(&watching.next_line()).unwrap();
    assert_eq!(first["seq"], 1);
    fs::remove_file(&path).unwrap();
    // tail -F looks once a second; give it time to see the file gone.
    thread::sleep(Duration::from_millis(300));
    write_state(&path, State::Updated);
    let second: serde_json::Value = serde_json::from_str(&watching.next_line()).unwrap();
    let (code, _, stderr) = watching.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (&second["prev"], &second["state"], &second["seq"]),
        (
            &serde_json::json!("prepared"),
            &serde_json::json!("updated"),
            &serde_json::json!(2)
        )
    );
    assert!(stderr.contains("waiting for it to come back"), "{stderr}");
    assert!(stderr.contains("is back"), "{stderr}");
}

#[test]
fn follow_waits_for_a_file_absent_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("state");
    let mut child = luoctl_std()
        .arg("--state-file")
        .arg(&path)
        .args([
            "watch",
            "--follow",
            "--initial",
            "-n",
            "1",
            "--idle-timeout",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    write_state(&path, State::Normal);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(stdout.ends_with(" - -> normal\n"), "{stdout}");
}

/// Rewrites the counter beside `state` by a rename, so no read sees it half-written, as no read
/// of the kernel's attribute can.
fn write_count(state: &Path, count: u64) {
    let tmp = state.with_file_name("transitions.tmp");
    fs::write(&tmp, format!("{count}\n")).unwrap();
    fs::rename(&tmp, state.with_file_name("transitions")).unwrap();
}

#[test]
fn watch_with_the_counter_reports_changes_missed_even_when_the_state_came_back() {
    let (_dir, path) = state_dir(State::Normal);
    write_count(&path, 0);
    let mut watching = start_watch(&path, &["--json", "--initial", "-n", "4"]);
    assert!(
        watching.ready.contains("counting transitions"),
        "{}",
        watching.ready
    );
    let record = |line: String| -> serde_json::Value { serde_json::from_str(&line).unwrap() };
    let initial = record(watching.next_line());
    assert_eq!(initial["state"], "normal");
    assert_eq!(initial["transitions"], 0);
    assert!(initial.get("missed").is_none(), "{initial}");

    // The kernel's order: the state (with the count, in one word), then the notify of
    // transitions, which is what the watch follows.
    write_state(&path, State::Prepared);
    write_count(&path, 1);
    let first = record(watching.next_line());
    assert_eq!(
        (
            &first["prev"],
            &first["state"],
            &first["transitions"],
            &first["missed"]
        ),
        (
            &serde_json::json!("normal"),
            &serde_json::json!("prepared"),
            &serde_json::json!(1),
            &serde_json::json!(0)
        ),
        "{first}"
    );

    // prepared -> normal -> prepared between two reads: no change of state to see, but the
    // count says two changes came and went.
    write_count(&path, 3);
    let back = record(watching.next_line());
    assert_eq!(back["prev"], "prepared");
    assert_eq!(back["state"], "prepared");
    assert_eq!(back["transitions"], 3);
    assert_eq!(back["missed"], 2);
    assert_eq!(back["seq"], 2);

    // prepared -> frozen -> normal: one change shown, one missed.
    write_state(&path, State::Normal);
    write_count(&path, 5);
    let text = watching.next_line();
    let (code, _, _) = watching.finish();
    assert_eq!(code, 0);
    let last = record(text);
    assert_eq!(
        (&last["prev"], &last["state"], &last["missed"]),
        (
            &serde_json::json!("prepared"),
            &serde_json::json!("normal"),
            &serde_json::json!(1)
        ),
        "{last}"
    );
}

#[test]
fn watch_text_and_template_show_what_was_missed() {
    let (_dir, path) = state_dir(State::Prepared);
    write_count(&path, 1);
    let mut watching = start_watch(&path, &["-n", "1"]);
    write_count(&path, 3);
    let line = watching.next_line();
    assert!(
        line.ends_with(" prepared -> prepared (missed 2)\n"),
        "{line}"
    );
    assert_eq!(watching.finish().0, 0);

    let mut watching = start_watch(&path, &["-n", "1", "--format", "%p %s %c %m"]);
    write_state(&path, State::Normal);
    write_count(&path, 4);
    assert_eq!(watching.next_line(), "prepared normal 4 0\n");
    assert_eq!(watching.finish().0, 0);
}

#[test]
fn watch_without_a_counter_leaves_the_count_out() {
    let (_dir, path) = state_dir(State::Normal);
    let watching = start_watch(&path, &["--json", "-n", "1"]);
    assert!(!watching.ready.contains("counting"), "{}", watching.ready);
    write_state(&path, State::Prepared);
    let (code, stdout, _) = watching.finish();
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(stdout.trim_end()).unwrap();
    assert!(value.get("transitions").is_none(), "{value}");
    assert!(value.get("missed").is_none(), "{value}");
}
