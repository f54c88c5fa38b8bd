//! Runs one kernel test inside the guest: `luo-guest-tests TEST --ko PATH`, or the arrival
//! check in a kernel a kexec started: `luo-guest-tests arrival --ko PATH STATE GENERATION
//! [REASON]`, or a step of the test hook the live-update tests take: `luo-guest-tests freeze`,
//! `luo-guest-tests damage N`; or a step of the observer flavour's tests: `luo-guest-tests
//! check-watch FILE ORDER LAST [COUNT]` (ORDER: state words joined by commas; COUNT: the final
//! transition count), `luo-guest-tests
//! preserve-memfd|verify-memfd SESSION TOKEN MIB SEED`, `luo-guest-tests retrieve-and-hold
//! SESSION TOKEN`, `luo-guest-tests hold-empty-session SESSION` (LAST: state words joined by
//! `|`).
//!
//! Started by `cargo xtask test` in a fresh guest per test. Exits 0 when the test passes and
//! the kernel log holds no splat; otherwise prints why and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use luo_state::State;
use luo_tests::{Outcome, dev, guest, kmsg};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [probe, expect] if probe == "unprivileged-probe" => {
            guest::errors::unprivileged_probe(expect)
        }
        [hook] if hook == "freeze" => {
            dev::selftest_freeze().map_err(|errno| format!("test hook freeze: errno {errno}"))
        }
        [hook, damage] if hook == "damage" => damage
            .parse()
            .map_err(|err| format!("damage '{damage}': {err}"))
            .and_then(|raw| {
                dev::selftest_damage_raw(raw)
                    .map_err(|errno| format!("test hook damage {raw}: errno {errno}"))
            }),
        [test, flag, ko] if flag == "--ko" => run(test, PathBuf::from(ko)),
        [check, file, order, last] if check == "check-watch" => {
            check_watch(file, order, last, None)
        }
        [check, file, order, last, count] if check == "check-watch" => count
            .parse()
            .map_err(|err| format!("count '{count}': {err}"))
            .and_then(|count| check_watch(file, order, last, Some(count))),
        [step, name, token, mib, seed] if step == "preserve-memfd" => {
            numbers(token, mib, seed).and_then(|(t, m, s)| guest::observed::preserve(name, t, m, s))
        }
        [step, name, token, mib, seed] if step == "verify-memfd" => {
            numbers(token, mib, seed).and_then(|(t, m, s)| guest::observed::verify(name, t, m, s))
        }
        [step, name] if step == "hold-empty-session" => guest::observed::hold_empty(name),
        [check] if check == "session-errors" => guest::observed::session_errors(),
        [step, name, token] if step == "retrieve-and-hold" => token
            .parse()
            .map_err(|err| format!("token '{token}': {err}"))
            .and_then(|t| guest::observed::retrieve_and_hold(name, t)),
        [test, flag, ko, state, generation, reason @ ..]
            if test == "arrival" && flag == "--ko" && reason.len() <= 1 =>
        {
            arrival(ko, state, generation, reason.first())
        }
        _ => Err("usage: luo-guest-tests TEST --ko PATH (tests: layout transitions errors poll model rmmod luoctl agent follow refusal production faults kho-off debugfs-off)".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("FAIL: {message}");
            ExitCode::FAILURE
        }
    }
}

fn state(word: &str) -> Result<State, String> {
    State::from_word(word.as_bytes()).ok_or_else(|| format!("'{word}' is not a state word"))
}

fn check_watch(file: &str, order: &str, last: &str, count: Option<u64>) -> Outcome {
    let order = order
        .split(',')
        .filter(|w| !w.is_empty())
        .map(state)
        .collect::<Result<Vec<_>, _>>()?;
    let last = last.split('|').map(state).collect::<Result<Vec<_>, _>>()?;
    guest::observed::check_watch(std::path::Path::new(file), &order, &last, count)
}

fn numbers(token: &str, mib: &str, seed: &str) -> Result<(u64, u64, u64), String> {
    let parse = |what: &str, text: &str| {
        text.parse::<u64>()
            .map_err(|err| format!("{what} '{text}': {err}"))
    };
    Ok((
        parse("token", token)?,
        parse("MiB", mib)?,
        parse("seed", seed)?,
    ))
}

fn arrival(ko: &str, state: &str, generation: &str, reason: Option<&String>) -> Outcome {
    let state = State::from_word(state.as_bytes())
        .ok_or_else(|| format!("arrival: '{state}' is not a state word"))?;
    let generation = generation
        .parse()
        .map_err(|err| format!("arrival: generation '{generation}': {err}"))?;
    guest::arrival::run(
        &PathBuf::from(ko),
        state,
        generation,
        reason.map(String::as_str),
    )
}

fn run(test: &str, ko: PathBuf) -> Outcome {
    let result = match test {
        "layout" => guest::layout::run(&ko),
        "transitions" => guest::transitions::run(&ko),
        "errors" => guest::errors::run(&ko),
        "poll" => guest::poll::run(&ko),
        "model" => guest::model::run(&ko),
        "rmmod" => guest::rmmod::run(&ko),
        "luoctl" => guest::luoctl::run(&ko),
        "agent" => guest::agent::run(&ko),
        "follow" => guest::follow::run(&ko),
        "refusal" => guest::refusal::run(&ko),
        "production" => guest::production::run(&ko),
        "faults" => guest::faults::run(&ko),
        "kho-off" => guest::boot_faults::kho_off(&ko),
        "debugfs-off" => guest::boot_faults::debugfs_off(&ko),
        other => Err(format!("unknown test '{other}'")),
    };
    // A splat fails the test even when every assertion held; the fault test checks KHO's
    // warning about its debugfs view itself, on the one load that may cause it.
    let excused: &[&str] = match test {
        "faults" => &[guest::faults::KHO_VIEW_WARNING],
        _ => &[],
    };
    result.and_then(|()| kmsg::assert_clean_except(excused))
}
