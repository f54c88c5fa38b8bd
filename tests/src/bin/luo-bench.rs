//! The benchmarks, in a guest: `luo-bench --ko PATH --c-floor PATH` (as root).
//!
//! Started by `cargo xtask bench`. Loads the module, then measures, the programs compared
//! taking turns on one stream of transitions so that the host's slow phases (TCG shares the
//! host) fall on all of them alike:
//!
//! - the latency from a transition's ioctl to the last of 1, 16 or 128 watcher processes
//!   holding the new state, for the library (`Watcher::next_change`) and for the C floor
//!   (`poll` + `pread`), which report the same way (one binary record, one `write(2)`);
//! - the same for the Rust layers between them (the library's `KernfsFile`, and the floor's
//!   loop in Rust), to show where a difference goes;
//! - the ioctl's time as its caller sees it with 0, 1, 16 and 128 watchers;
//! - the work of one wake in each of those layers, without the scheduler;
//!
//! then re-reading every 100 ms, the cost of one read and of the clock reads, and the system
//! calls of an idle watcher. Prints one `bench: KEY VALUE` line per figure. Exits 1 only when
//! a measurement cannot be made; targets are judged by xtask, not here.
//!
//! `luo-bench watch VARIANT ID [COUNT]` is a child mode: one Rust watcher (see
//! `luo_tests::bench::watchers`) reporting as the C floor does, or COUNT of them forked from
//! one process, as the C floor starts its own.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use luo_tests::bench::latency::{self, Driver, Program, Samples, Table};
use luo_tests::bench::watchers::{self, Variant};
use luo_tests::bench::{Summary, cost, idle, line, micros, wake_work};
use luo_tests::module;

// Counts allocations, so that the report can say how many one wake of the library makes.
#[global_allocator]
static ALLOCATOR: luo_tests::bench::alloc::Counting = luo_tests::bench::alloc::Counting;

const USAGE: &str =
    "usage: luo-bench --ko PATH --c-floor PATH | luo-bench watch VARIANT ID [COUNT]";

/// The numbers of watchers of the scaling measurement, each with its measured transitions
/// per program (fewer where each costs more) and how many in a row one program gets before
/// another takes its turn (a change of turn stops and continues whole fleets, which costs
/// more with more watchers).
const WATCHERS: [Scale; 3] = [
    Scale {
        watchers: 1,
        transitions: 600,
        block: 1,
    },
    Scale {
        watchers: 16,
        transitions: 300,
        block: 4,
    },
    Scale {
        watchers: 128,
        transitions: 240,
        block: 8,
    },
];

/// How one number of watchers is measured.
#[derive(Clone, Copy)]
struct Scale {
    watchers: usize,
    transitions: usize,
    block: usize,
}

/// Each program's samples are cut in this many parts in time order, for the spread: part `i`
/// of every program covers the same stretch of time.
const PARTS: usize = 10;
/// Transitions without watchers, for the ioctl's own cost.
const BARE_TRANSITIONS: usize = 500;
/// Transitions before the measured ones of each run, not counted (first wakes, caches, TCG's
/// translation of code run for the first time).
const WARMUP: usize = 10;
/// Measured transitions of the re-reading watcher (each costs about 100 ms).
const REREAD_TRANSITIONS: usize = 60;
/// The guest console's log level during the run: warnings and errors (below 5) are printed,
/// the module's KERN_INFO line per transition is not.
const CONSOLE_LOGLEVEL: u32 = 5;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [mode, variant, id] if mode == "watch" => watch(variant, id, None),
        [mode, variant, id, count] if mode == "watch" => watch(variant, id, Some(count)),
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

/// The child mode: one Rust watcher until killed, or `count` of them (see
/// [`watchers::launch`]).
fn watch(variant: &str, id: &str, count: Option<&String>) -> Result<(), String> {
    let variant = Variant::from_name(variant).ok_or_else(|| format!("no variant {variant}"))?;
    let id = id.parse().map_err(|_| format!("bad watcher id {id}"))?;
    match count {
        Some(count) => {
            let count = count.parse().map_err(|_| format!("bad count {count}"))?;
            watchers::launch(variant, id, count)
        }
        None => watchers::run(variant, id),
    }
}

fn run(ko: &Path, floor: &Path) -> Result<(), String> {
    let started = Instant::now();
    module::load_with_selftest(ko)?;
    // The module logs every transition at KERN_INFO. Printed on the guest's serial console, a
    // line costs the ioctl that logs it a large, host-dependent time under TCG; that is the
    // harness, not luo. Only the console is turned down: the message still goes to the log
    // buffer inside every measured transition, and warnings and errors still reach the console.
    std::fs::write("/proc/sys/kernel/printk", format!("{CONSOLE_LOGLEVEL}\n"))
        .map_err(|err| format!("/proc/sys/kernel/printk: {err}"))?;
    line("console_loglevel", CONSOLE_LOGLEVEL);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    line("kernel", release.trim());
    line("cpus", cpus);
    line(
        "lockdep",
        if Path::new("/proc/lockdep").exists() {
            "yes"
        } else {
            "no"
        },
    );
    line("clock.source", cost::clock_source());

    let me = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let state_path = luo_sysfs_abi::path::STATE_PATH;
    let c_floor = Program {
        name: "c_floor",
        path: floor.to_path_buf(),
        args: vec![state_path.to_owned()],
    };
    let rust = |variant: Variant| Program {
        name: variant.name(),
        path: me.clone(),
        args: vec!["watch".to_owned(), variant.name().to_owned()],
    };
    let library = rust(Variant::Library);
    let layers = [rust(Variant::Kernfs), rust(Variant::Raw)];

    // The programs compared at one number of watchers take turns on one stream of
    // transitions (see `latency::compare`): the library and the floor, and the layers between
    // them, which show where a difference goes.
    let mut driver = Driver::open()?;
    let mut table = Table::default();
    table.push(
        "none",
        0,
        vec![latency::no_watchers(&mut driver, WARMUP, BARE_TRANSITIONS)?],
    );
    for scale in WATCHERS {
        // On the console, so that a guest that runs out of time shows how far it got.
        eprintln!(
            "luo-bench: {} watchers at {} s",
            scale.watchers,
            started.elapsed().as_secs()
        );
        let programs = [&c_floor, &library, &layers[0], &layers[1]];
        let plan = latency::Plan {
            watchers: scale.watchers,
            transitions: scale.transitions,
            block: scale.block,
            warmup: WARMUP,
            gap_us: latency::FAST_GAP_US,
            parts: PARTS,
        };
        let results = latency::compare(&mut driver, &programs, plan)?;
        for (program, parts) in programs.iter().zip(results) {
            table.push(program.name, scale.watchers, parts);
        }
    }
    eprintln!("luo-bench: re-reading at {} s", started.elapsed().as_secs());
    let reread = rust(Variant::Reread);
    let plan = latency::Plan {
        watchers: 1,
        transitions: REREAD_TRANSITIONS,
        block: REREAD_TRANSITIONS,
        warmup: 2,
        gap_us: latency::REREAD_GAP_US,
        parts: 1,
    };
    for parts in latency::compare(&mut driver, &[&reread], plan)? {
        table.push(reread.name, 1, parts);
    }
    report_latency(&table);
    line("ioctl.cpu_clock_cost_us", micros(driver.cpu_clock_cost()));
    for Scale { watchers, .. } in WATCHERS {
        let starts = table.starts(watchers);
        line(
            &format!("fleet_start.w{watchers}.max_ms"),
            format!("{:.1}", Summary::of(&starts).max as f64 / 1e6),
        );
    }
    line("elapsed.latency_s", started.elapsed().as_secs());

    // One wake's work in each layer, without the scheduler.
    let work = wake_work::measure(&mut driver)?;
    for (layer, summary) in [
        ("rust_raw", work.raw),
        ("kernfs", work.kernfs),
        ("library", work.library),
    ] {
        line(&format!("wake_work.{layer}.n"), summary.n);
        line(&format!("wake_work.{layer}.p50_ns"), summary.p50);
        line(&format!("wake_work.{layer}.p99_ns"), summary.p99);
    }
    line(
        "wake_work.library.allocations_per_wake",
        work.library_allocations,
    );

    let clocks = cost::clocks();
    line("clock.instant_now_ns", clocks.instant);
    line("clock.system_time_now_ns", clocks.system_time);
    line("clock.clock_gettime_monotonic_ns", clocks.monotonic);

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
    idle_report("library", &me, &["watch", Variant::Library.name(), "0"]);
    idle_report("c_floor", floor, &[state_path, "0"]);
    line("elapsed.total_s", started.elapsed().as_secs());
    Ok(())
}

/// The latency and ioctl lines, from every part.
fn report_latency(table: &Table) {
    let programs = ["c_floor", "library", "kernfs", "rust_raw", "reread_100ms"];
    for program in programs {
        for Scale { watchers, .. } in WATCHERS {
            let parts = table.parts(program, watchers);
            if parts.is_empty() {
                continue;
            }
            let key = |what: &str| format!("latency.{program}.w{watchers}.{what}");
            let all = table.pooled(program, watchers);
            let last = Summary::of(&all.last);
            line(&key("n"), last.n);
            line(&key("p50_us"), micros(last.p50));
            line(&key("p99_us"), micros(last.p99));
            line(&key("min_us"), micros(last.min));
            line(&key("max_us"), micros(last.max));
            line(
                &key("part_p50_us"),
                per_part(parts, |r| micros(p50(&r.last))),
            );
            if watchers > 1 {
                let first = Summary::of(&all.first);
                line(&key("first_p50_us"), micros(first.p50));
                line(&key("first_p99_us"), micros(first.p99));
            }
        }
    }
    // The fair comparison: the same process model, the same report, the same transitions.
    for Scale { watchers, .. } in WATCHERS {
        let lib = table.pooled("library", watchers);
        let floor = table.pooled("c_floor", watchers);
        let (lib, floor) = (Summary::of(&lib.last), Summary::of(&floor.last));
        let key = |what: &str| format!("ratio.library_over_floor.w{watchers}.{what}");
        line(&key("p50"), format!("{:.2}", ratio(lib.p50, floor.p50)));
        line(&key("p99"), format!("{:.2}", ratio(lib.p99, floor.p99)));
        // Part i of both covers the same stretch of time.
        let lib_parts = table.parts("library", watchers);
        let floor_parts = table.parts("c_floor", watchers);
        let per_part: Vec<String> = lib_parts
            .iter()
            .zip(floor_parts)
            .map(|(l, f)| format!("{:.2}", ratio(p50(&l.last), p50(&f.last))))
            .collect();
        line(&key("part_p50"), per_part.join(","));
    }
    let reread = Summary::of(&table.pooled("reread_100ms", 1).last);
    let lib = Summary::of(&table.pooled("library", 1).last);
    line(
        "ratio.reread_over_library.p50",
        format!("{:.1}", ratio(reread.p50, lib.p50)),
    );
    // The ioctl: with no watcher, and with the fleets of every program (the kernel's work
    // does not depend on which program sleeps in poll).
    for watchers in [0].into_iter().chain(WATCHERS.map(|s| s.watchers)) {
        let mut all = Samples::default();
        for program in ["none", "c_floor", "library", "kernfs", "rust_raw"] {
            all.extend(&table.pooled(program, watchers));
        }
        if all.ioctl.is_empty() {
            continue;
        }
        let wall = Summary::of(&all.ioctl);
        let cpu = Summary::of(&all.ioctl_cpu);
        let key = |what: &str| format!("ioctl.w{watchers}.{what}");
        line(&key("n"), wall.n);
        line(&key("p50_us"), micros(wall.p50));
        line(&key("p99_us"), micros(wall.p99));
        line(&key("cpu_p50_us"), micros(cpu.p50));
        line(&key("cpu_p99_us"), micros(cpu.p99));
    }
}

/// One figure per part, comma-separated.
fn per_part(parts: &[Samples], figure: impl Fn(&Samples) -> String) -> String {
    parts.iter().map(figure).collect::<Vec<_>>().join(",")
}

fn p50(samples: &[u64]) -> u64 {
    Summary::of(samples).p50
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
