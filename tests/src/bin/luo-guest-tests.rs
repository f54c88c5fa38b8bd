//! Runs one kernel test inside the guest: `luo-guest-tests TEST --ko PATH`.
//!
//! Started by `cargo xtask test` in a fresh guest per test. Exits 0 when the test passes and
//! the kernel log holds no splat; otherwise prints why and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use luo_tests::{Outcome, guest, kmsg};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [probe] if probe == "unprivileged-probe" => guest::errors::unprivileged_probe(),
        [test, flag, ko] if flag == "--ko" => run(test, PathBuf::from(ko)),
        _ => Err("usage: luo-guest-tests TEST --ko PATH (tests: layout transitions errors poll model rmmod luoctl)".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("FAIL: {message}");
            ExitCode::FAILURE
        }
    }
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
        other => Err(format!("unknown test '{other}'")),
    };
    // A splat fails the test even when every assertion held.
    result.and_then(|()| kmsg::assert_clean())
}
