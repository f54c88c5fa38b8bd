//! `luoctl` end to end, against state files and devices in temporary directories: reading,
//! waiting, sending events, the documentation it generates, and its exit statuses.

mod cli;

use std::fs;
use std::thread;
use std::time::Duration;

use cli::{luoctl, state_dir, write_state};
use luo_user::State;
use predicates::prelude::*;
use tempfile::TempDir;

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
fn state_json_is_an_object_with_the_version_and_the_state() {
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
    assert_eq!(
        value,
        serde_json::json!({ "v": 1, "state": State::Updated.word() })
    );
}

#[test]
fn state_json_carries_the_transition_count_beside_the_state_file() {
    let (dir, path) = state_dir(State::Prepared);
    fs::write(dir.path().join("transitions"), "5\n").unwrap();
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
    assert_eq!(
        value,
        serde_json::json!({ "v": 1, "state": State::Prepared.word(), "transitions": 5 })
    );
}

#[test]
fn state_json_with_a_bad_transition_count_is_exit_1_naming_it() {
    let (dir, path) = state_dir(State::Normal);
    fs::write(dir.path().join("transitions"), "five\n").unwrap();
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["state", "--json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("transition count 'five'"));
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
fn a_missing_state_file_given_by_hand_is_exit_7_saying_to_check_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent");
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(7)
        .stdout("")
        .stderr(predicate::str::contains(path.to_string_lossy()))
        .stderr(predicate::str::contains("does not exist: check the path"))
        // The path is the user's, not luo's: the module is not blamed.
        .stderr(predicate::str::contains("module").not());
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
        .stderr(predicate::str::contains("'hibernating'"))
        .stderr(predicate::str::contains(
            "possible values: normal, prepared, frozen, updated",
        ));
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
        .stdout(predicate::str::contains("124"))
        .stdout(predicate::str::contains("refused by the state machine"))
        .stdout(predicate::str::contains("LUO_INTERVAL"));
}

#[test]
fn prepare_without_a_device_given_by_hand_is_exit_7_naming_it() {
    let dir = TempDir::new().unwrap();
    let device = dir.path().join("liveupdate");
    luoctl()
        .arg("--device")
        .arg(&device)
        .arg("prepare")
        .assert()
        .code(7)
        .stderr(predicate::str::contains(device.to_string_lossy()))
        .stderr(predicate::str::contains("check the path"));
}

/// A state directory whose `flavour` file says `observer`, as mainline's kernel with luo built
/// in shows it.
fn observer_dir() -> (TempDir, std::path::PathBuf) {
    let (dir, path) = state_dir(State::Normal);
    fs::write(dir.path().join("flavour"), "observer\n").unwrap();
    (dir, path)
}

#[test]
fn prepare_reads_the_flavour_beside_the_state_file_it_is_given() {
    let (dir, path) = observer_dir();
    let socket = dir.path().join("agent.sock");
    // Observer: prepare asks the agent, and none listens (exit 10), instead of sending the v3
    // event to a device, which the standalone flavour would.
    luoctl()
        .env("LUO_DEVICE", dir.path().join("no-device"))
        .arg("prepare")
        .arg("--state-file")
        .arg(&path)
        .arg("--socket")
        .arg(&socket)
        .assert()
        .code(10)
        .stderr(predicate::str::contains("observer flavour"))
        .stderr(predicate::str::contains(socket.to_string_lossy()));
}

#[test]
fn cancel_reads_the_flavour_beside_the_state_file_in_the_environment() {
    let (dir, path) = observer_dir();
    let socket = dir.path().join("agent.sock");
    luoctl()
        .env("LUO_STATE_FILE", &path)
        .env("LUO_DEVICE", dir.path().join("no-device"))
        .arg("cancel")
        .arg("--socket")
        .arg(&socket)
        .assert()
        .code(10)
        .stderr(predicate::str::contains(socket.to_string_lossy()));
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

#[test]
fn completions_offer_the_state_words_for_wait() {
    let out = luoctl()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let script = String::from_utf8(out).unwrap();
    assert!(
        script.contains("normal prepared frozen updated"),
        "the bash completion does not offer the states"
    );
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let dir = TempDir::new().unwrap();
    luoctl()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout("");
    for page in [
        "luoctl.1",
        "luoctl-state.1",
        "luoctl-generation.1",
        "luoctl-watch.1",
        "luoctl-wait.1",
        "luoctl-prepare.1",
        "luoctl-cancel.1",
        "luoctl-finish.1",
        "luoctl-agent.1",
        "luoctl-kexec.1",
        "luoctl-completions.1",
        "luoctl-man.1",
    ] {
        let text = fs::read_to_string(dir.path().join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let agent = fs::read_to_string(dir.path().join("luoctl-agent.1")).unwrap();
    assert!(
        agent.contains("hooks\\-dir"),
        "luoctl-agent.1 does not document --hooks-dir"
    );
}

#[test]
fn wait_json_prints_an_object() {
    let (_dir, path) = state_dir(State::Prepared);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["wait", "prepared", "--json"])
        .assert()
        .code(0)
        .stdout("{\"v\":1,\"state\":\"prepared\"}\n");
}

#[test]
fn quiet_drops_the_ready_line_of_wait() {
    let (_dir, path) = state_dir(State::Normal);
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["-q", "wait", "prepared", "--timeout", "200ms"])
        .assert()
        .code(124)
        .stderr(predicate::str::contains("waiting for").not());
}

#[test]
fn the_interval_comes_from_luo_interval() {
    luoctl()
        .env("LUO_INTERVAL", "soon")
        .arg("state")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--interval"));
}

#[test]
fn generation_prints_the_number() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("generation");
    fs::write(&path, "2\n").unwrap();
    luoctl()
        .arg("--generation-file")
        .arg(&path)
        .arg("generation")
        .assert()
        .code(0)
        .stdout("2\n");
    luoctl()
        .env("LUO_GENERATION_FILE", &path)
        .args(["generation", "--json"])
        .assert()
        .code(0)
        .stdout("{\"v\":1,\"generation\":2}\n");
}

#[test]
fn a_malformed_generation_is_exit_1_quoting_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("generation");
    fs::write(&path, "007\n").unwrap();
    luoctl()
        .arg("--generation-file")
        .arg(&path)
        .arg("generation")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("generation '007'"))
        .stderr(predicate::str::contains(path.to_string_lossy()));
}

#[test]
fn the_old_handover_command_is_gone() {
    luoctl()
        .arg("handover")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unrecognized subcommand"));
}

#[test]
fn a_bare_number_is_a_timeout_in_seconds() {
    let (_dir, path) = state_dir(State::Normal);
    let started = std::time::Instant::now();
    luoctl()
        .arg("--state-file")
        .arg(&path)
        .args(["wait", "updated", "--timeout", "1"])
        .assert()
        .code(124);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
}

/// The long options `luoctl SUBCOMMAND --help` lists.
fn listed_options(subcommand: &str) -> String {
    let out = luoctl()
        .args([subcommand, "--help"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn each_subcommand_lists_only_the_options_it_uses() {
    let prepare = listed_options("prepare");
    assert!(prepare.contains("--device"), "{prepare}");
    // The observer flavour reads the flavour and the state beside it.
    assert!(prepare.contains("--state-file"), "{prepare}");
    assert!(!prepare.contains("--generation-file"), "{prepare}");
    let state = listed_options("state");
    assert!(state.contains("--state-file"), "{state}");
    assert!(!state.contains("--device"), "{state}");
    assert!(!state.contains("--quiet"), "{state}");
    let generation = listed_options("generation");
    assert!(generation.contains("--generation-file"), "{generation}");
    assert!(!generation.contains("--state-file"), "{generation}");
    let agent = listed_options("agent");
    for option in ["--state-file", "--device", "--generation-file", "--quiet"] {
        assert!(agent.contains(option), "agent lacks {option}: {agent}");
    }
    let completions = listed_options("completions");
    assert!(!completions.contains("--state-file"), "{completions}");
}

#[test]
fn an_option_after_the_subcommand_is_read() {
    let (_dir, path) = state_dir(State::Frozen);
    luoctl()
        .arg("state")
        .arg("--state-file")
        .arg(&path)
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Frozen));
}

#[test]
fn an_option_before_the_subcommand_still_wins_over_the_environment() {
    let (_dir, path) = state_dir(State::Prepared);
    luoctl()
        .env("LUO_STATE_FILE", "/nonexistent/state")
        .arg("--state-file")
        .arg(&path)
        .arg("state")
        .assert()
        .code(0)
        .stdout(format!("{}\n", State::Prepared));
}

#[test]
fn the_man_pages_have_exit_status_environment_and_see_also() {
    let out = luoctl()
        .arg("man")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let page = String::from_utf8(out).unwrap();
    for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH \"SEE ALSO\""] {
        assert!(page.contains(section), "no {section}");
    }
    assert!(page.contains(".B 124"), "{page}");
    assert!(page.contains("LUO_KEXEC_LOADED"), "{page}");
}

#[test]
fn cancel_documents_that_it_unloads_and_how_to_keep_the_image() {
    let cancel = listed_options("cancel");
    assert!(cancel.contains("--keep-loaded"), "{cancel}");
    assert!(
        cancel.contains("unloads the kernel loaded for kexec"),
        "{cancel}"
    );
}
