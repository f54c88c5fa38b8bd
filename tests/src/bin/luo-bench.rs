//! The benchmarks, in a guest: `luo-bench --ko PATH --c-floor PATH` (as root).
//!
//! Started by `cargo xtask bench`. Loads the module, then measures the latency from a
//! transition's ioctl to a watcher's report for the library watcher, the C floor (`poll` +
//! `pread`) and re-reading every 100 ms; the cost of `StateFile::state()` against
//! open + read + close; and the system calls of an idle watcher. Prints one `bench: KEY VALUE`
//! line per figure. Exits 1 only when a measurement cannot be made; targets are judged by
//! xtask, not here.
//!
//! `luo-bench watch-child` is a child mode: the library watcher in its own process, speaking
//! the C floor's protocol (`ready WORD` once it watches, then `NS WORD` per change, `NS` on
//! `CLOCK_MONOTONIC`). The idle measurement runs it, and the latency runs it beside the
//! in-thread watcher, so that the library and the floor are also compared process to process.

use std::path::Path;
use std::process::ExitCode;

use luo_tests::bench::{self, Summary, cost, idle, latency, line, micros};
use luo_tests::module;
use luo_user::Watcher;

const USAGE: &str = "usage: luo-bench --ko PATH --c-floor PATH | luo-bench watch-child";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [mode] if mode == "watch-child" => watch_child(),
        [ko_flag, ko, floor_flag, floor] if ko_flag == "--ko" && floor_flag == "--c-floor" => {
            run(Path::new(ko), Path::new(floor))
        }
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("luo-bench: {message}");
            println!("bench: error {message}");
            ExitCode::FAILURE
        }
    }
}

/// The child mode: watch with the library until killed, speaking the C floor's protocol.
fn watch_child() -> Result<(), String> {
    let mut watcher = Watcher::open_default().map_err(|err| err.to_string())?;
    println!("ready {}", watcher.current());
    loop {
        if let Some(change) = watcher.next_change(None).map_err(|e| e.to_string())? {
            println!("{} {}", bench::monotonic_ns(), change.state);
        }
    }
}

fn run(ko: &Path, floor: &Path) -> Result<(), String> {
    module::load_with_selftest(ko)?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    line("kernel", release.trim());
    line("cpus", cpus);

    // Latency: one variant at a time, with the others stopped; the fast ones in rounds.
    let mut driver = latency::Driver::open()?;
    let me = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let state_path = luo_sysfs_abi::path::STATE_PATH;
    let (mut library, mut floor_lat, mut library_child) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..latency::ROUNDS {
        let n = latency::TRANSITIONS_PER_ROUND;
        library.extend(latency::library(&mut driver, n)?);
        floor_lat.extend(latency::child_process(
            &mut driver,
            floor,
            &[state_path],
            n,
        )?);
        library_child.extend(latency::child_process(
            &mut driver,
            &me,
            &["watch-child"],
            n,
        )?);
    }
    let library = Summary::of(&library);
    let floor_lat = Summary::of(&floor_lat);
    let library_child = Summary::of(&library_child);
    let reread = Summary::of(&latency::reread(&mut driver, latency::REREAD_TRANSITIONS)?);
    for (name, summary) in [
        ("library", library),
        ("c_floor", floor_lat),
        ("library_child", library_child),
        ("reread_100ms", reread),
    ] {
        line(&format!("latency.{name}.n"), summary.n);
        line(&format!("latency.{name}.p50_us"), micros(summary.p50));
        line(&format!("latency.{name}.p99_us"), micros(summary.p99));
        line(&format!("latency.{name}.max_us"), micros(summary.max));
    }
    line(
        "ratio.library_over_floor.p50",
        format!("{:.2}", ratio(library.p50, floor_lat.p50)),
    );
    line(
        "ratio.library_child_over_floor.p50",
        format!("{:.2}", ratio(library_child.p50, floor_lat.p50)),
    );
    line(
        "ratio.reread_over_library.p50",
        format!("{:.1}", ratio(reread.p50, library.p50)),
    );

    // One read of the state.
    let cost = cost::measure()?;
    line("state_read.calls", cost::CALLS);
    line("state_read.state_fn_ns", cost.state_fn);
    line("state_read.open_read_close_ns", cost.open_read_close);
    line(
        "state_read.speedup",
        format!("{:.2}", ratio(cost.open_read_close, cost.state_fn)),
    );

    // Idle watchers.
    line("idle.window_s", idle::WINDOW.as_secs());
    idle_report("library", &me, &["watch-child"]);
    idle_report("c_floor", floor, &[state_path]);
    Ok(())
}

/// The idle figures of one watcher: a failure to measure is reported, not fatal.
fn idle_report(name: &str, program: &Path, args: &[&str]) {
    match idle::syscalls(program, args) {
        Ok(calls) => {
            line(&format!("idle.{name}.syscalls"), calls.total);
            let by_name: Vec<String> = calls
                .by_name
                .iter()
                .map(|(call, n)| format!("{call}:{n}"))
                .collect();
            let by_name = if by_name.is_empty() {
                "-".to_owned()
            } else {
                by_name.join(",")
            };
            line(&format!("idle.{name}.by_syscall"), by_name);
        }
        Err(err) => line(
            &format!("idle.{name}.syscalls"),
            format!("unavailable ({err})"),
        ),
    }
    match idle::wakeups(program, args) {
        Ok(n) => line(&format!("idle.{name}.context_switches"), n),
        Err(err) => line(
            &format!("idle.{name}.context_switches"),
            format!("unavailable ({err})"),
        ),
    }
}

/// `a / b`, with 0 for an empty `b`.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}
