//! `cargo xtask bench`: the benchmarks, in one guest on our kernel with the fresh `luo.ko`.
//!
//! Builds `luo-bench` (release) and the C floor `tests/c/poll_floor.c`, boots one guest that
//! runs `luo-bench --ko KO --c-floor FLOOR`, prints its report (`bench: KEY VALUE` lines) and
//! says whether each target of the issue is met. Speed goals are reported, not asserted: only
//! a failed guest run is an error.

use std::collections::HashMap;
use std::process::Command;

use crate::cache;
use crate::module;
use crate::run::{self, Result};
use crate::vm;

/// (a) within this factor of (b) at p50.
const FLOOR_FACTOR: f64 = 1.1;
/// (a) at least this many times better than (c) at p50.
const REREAD_FACTOR: f64 = 20.0;

/// Builds, boots, reports.
pub fn run() -> Result {
    let module = module::ensure()?;
    let workspace = cache::workspace();
    run::step("luo-bench (release) and the C floor");
    run::run(
        Command::new("cargo")
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "luo-tests",
                "--bin",
                "luo-bench",
            ])
            .current_dir(&workspace),
    )?;
    let release = workspace.join("target/release");
    let bench = release.join("luo-bench");
    let floor = release.join("poll_floor");
    run::run(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&floor)
            .arg(workspace.join("tests/c/poll_floor.c")),
    )?;
    run::step("benchmarks in one guest under QEMU (TCG, 2 CPUs): about a minute");
    let script = format!(
        "{} --ko {} --c-floor {}",
        vm::shell_quote(&bench.to_string_lossy()),
        vm::shell_quote(&module.ko.to_string_lossy()),
        vm::shell_quote(&floor.to_string_lossy())
    );
    let guest = vm::run_in_guest(&module.kernel.build, &script)?;
    let report: Vec<&str> = guest
        .stdout
        .lines()
        .filter(|l| l.starts_with("bench:"))
        .collect();
    for line in &report {
        println!("{line}");
    }
    if !guest.success() {
        return Err(vm::failure_report("luo-bench", &guest));
    }
    println!();
    for verdict in targets(&report) {
        println!("{verdict}");
    }
    Ok(())
}

/// The value of each `bench: KEY VALUE` line.
fn values<'a>(report: &[&'a str]) -> HashMap<&'a str, &'a str> {
    report
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("bench:")?.trim_start();
            let (key, value) = rest.split_once(char::is_whitespace)?;
            Some((key, value.trim()))
        })
        .collect()
}

/// One line per target of the issue: met or missed, with the figures behind it.
fn targets(report: &[&str]) -> Vec<String> {
    let values = values(report);
    let num = |key: &str| values.get(key).and_then(|v| v.parse::<f64>().ok());
    let verdict = |ok: bool| if ok { "met   " } else { "MISSED" };
    let mut out = Vec::new();
    match (
        num("ratio.library_over_floor.p50"),
        num("latency.library.p50_us"),
        num("latency.c_floor.p50_us"),
    ) {
        (Some(r), Some(a), Some(b)) => out.push(format!(
            "target {} library p50 within {FLOOR_FACTOR}x of the C floor: {a} us vs {b} us = {r:.2}x",
            verdict(r <= FLOOR_FACTOR)
        )),
        _ => out.push("target ?      library vs C floor: no figures".to_owned()),
    }
    if let (Some(r), Some(a)) = (
        num("ratio.library_child_over_floor.p50"),
        num("latency.library_child.p50_us"),
    ) {
        out.push(format!(
            "       (the library in a child process, as the floor runs: {a} us = {r:.2}x)"
        ));
    }
    match (
        num("ratio.reread_over_library.p50"),
        num("latency.reread_100ms.p50_us"),
    ) {
        (Some(r), Some(c)) => out.push(format!(
            "target {} library p50 at least {REREAD_FACTOR}x better than re-reading every 100 ms: {c} us / library = {r:.1}x",
            verdict(r >= REREAD_FACTOR)
        )),
        _ => out.push("target ?      library vs re-reading: no figures".to_owned()),
    }
    match num("idle.library.syscalls") {
        Some(n) => {
            out.push(format!(
                "target {} zero syscalls of an idle library watcher over {}s: {n} ({})",
                verdict(n == 0.0),
                values.get("idle.window_s").unwrap_or(&"?"),
                values.get("idle.library.by_syscall").unwrap_or(&"?"),
            ));
            if n > 0.0 {
                out.push(format!(
                    "       the library watcher sleeps in poll without a timeout on luo's file (the module notifies before removal), so any call here is a regression; by syscall: {}; the C floor made {}",
                    values.get("idle.library.by_syscall").unwrap_or(&"?"),
                    values.get("idle.c_floor.syscalls").unwrap_or(&"?")
                ));
            }
        }
        None => out.push(format!(
            "target ?      idle syscalls: {}",
            values.get("idle.library.syscalls").unwrap_or(&"no figure")
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_from_the_report() {
        let report = [
            "bench: latency.library.p50_us        50.0",
            "bench: latency.c_floor.p50_us        48.0",
            "bench: latency.reread_100ms.p50_us   50000.0",
            "bench: ratio.library_over_floor.p50  1.04",
            "bench: ratio.reread_over_library.p50 1000.0",
            "bench: idle.window_s 5",
            "bench: idle.library.syscalls 0",
            "bench: idle.library.by_syscall -",
        ];
        let lines = targets(&report);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.starts_with("target met")),
            "{lines:?}"
        );
        let missed = targets(&["bench: idle.library.syscalls 5"]);
        assert!(missed.iter().any(|l| l.contains("MISSED")), "{missed:?}");
    }
}
