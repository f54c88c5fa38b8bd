//! `cargo xtask bench`: the benchmarks, in one guest on our kernel with the fresh `luo.ko`.
//!
//! Builds `luo-bench` (release) and the C floor `tests/c/poll_floor.c`, boots one guest that
//! runs `luo-bench --ko KO --c-floor FLOOR`, prints its report (`bench: KEY VALUE` lines), a
//! table of the headline figures and whether each target of the issue is met, and writes
//! `target/bench/report.json` and `target/bench/latency.svg`. Speed goals are reported, not
//! asserted: only a failed guest run is an error.

mod report;
mod svg;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::build::{cache, module, userspace};
use crate::guest::runner;
use crate::run::{self, Result};
use report::{Figure, Ioctl, Latency, Lines, Values, WATCHERS, figure_or_null, range};

/// The programs from the floor up to the library, with what each does per wake.
const LAYERS: [(&str, &str); 4] = [
    ("c_floor", "C: poll + pread + strcmp"),
    ("rust_raw", "Rust, libc: poll + pread + compare"),
    ("kernfs", "library KernfsFile: wait + read_into + parse"),
    ("library", "library Watcher::next_change"),
];

/// The library within this factor of the C floor at p50, one watcher each.
const FLOOR_FACTOR: f64 = 1.1;
/// The library at least this many times better than re-reading every 100 ms at p50.
const REREAD_FACTOR: f64 = 20.0;

/// The guest's time limit unless `LUO_VM_TIMEOUT` says otherwise: the benchmarks take about
/// three minutes of a quiet 2-core host, and a TCG guest on a busy host runs at half speed
/// or less; the runner's default (300 s) is sized for the tests.
const GUEST_TIMEOUT_S: &str = "900";

/// Builds, boots, reports.
pub fn run() -> Result {
    if std::env::var_os("LUO_VM_TIMEOUT").is_none() {
        // SAFETY: xtask has started no thread yet (the guest runner starts its readers
        // later), so nothing reads the environment concurrently.
        unsafe { std::env::set_var("LUO_VM_TIMEOUT", GUEST_TIMEOUT_S) };
    }
    let module = module::ensure()?;
    let workspace = cache::workspace();
    run::step("luo-bench (release) and the C floor");
    run::run(userspace::cargo_build().args([
        "--release",
        "-p",
        "luo-tests",
        "--bin",
        "luo-bench",
    ]))?;
    let release = workspace.join("target/release");
    let bench = release.join("luo-bench");
    let floor = release.join("poll_floor");
    run::run(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&floor)
            .arg(workspace.join("tests/c/poll_floor.c")),
    )?;
    run::step("benchmarks in one guest under QEMU (TCG, 2 CPUs): about three minutes");
    let script = format!(
        "{} --ko {} --c-floor {}",
        runner::shell_quote(&bench.to_string_lossy()),
        runner::shell_quote(&module.ko.to_string_lossy()),
        runner::shell_quote(&floor.to_string_lossy())
    );
    let guest = runner::run_in_guest(&module.kernel.build, &script)?;
    let lines: Vec<&str> = guest
        .stdout
        .lines()
        .filter(|l| l.starts_with("bench:"))
        .collect();
    for line in &lines {
        println!("{line}");
    }
    if !guest.success() {
        return Err(runner::failure_report("luo-bench", &guest));
    }
    let values = Values::parse(&lines);
    println!();
    for row in table(&values) {
        println!("{row}");
    }
    println!();
    let verdicts = targets(&values);
    for verdict in &verdicts {
        println!("{}", verdict.line);
    }
    let out = workspace.join("target/bench");
    std::fs::create_dir_all(&out)
        .map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let machine = Machine::probe(&values);
    write(
        &out.join("report.json"),
        &report_json(&values, &verdicts, &machine, now)?,
    )?;
    write(
        &out.join("latency.svg"),
        &chart(&values, &machine, now).render(),
    )?;
    println!();
    println!(
        "wrote {0}/report.json and {0}/latency.svg (to publish them, copy both to \
         Documentation/bench/ and add the run's dated figures to its README.md)",
        out.display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// Where the figures were taken: the host and the guest.
struct Machine {
    /// The host's CPU model.
    host_cpu: String,
    /// The host's CPUs.
    host_cpus: usize,
    /// The guest in words: accelerator, CPUs, kernel, lockdep, clock source.
    guest: String,
}

impl Machine {
    fn probe(values: &Values) -> Machine {
        let host_cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let host_cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let lockdep = if values.get("lockdep") == Some("yes") {
            " with lockdep"
        } else {
            ""
        };
        let guest = format!(
            "QEMU TCG guest, {} vCPUs, kernel {}{lockdep}, clock source {}",
            values.get("cpus").unwrap_or("?"),
            values.get("kernel").unwrap_or("?"),
            values.get("clock.source").unwrap_or("?"),
        );
        Machine {
            host_cpu,
            host_cpus,
            guest,
        }
    }

    fn host(&self) -> String {
        format!("{} CPUs, {}", self.host_cpus, self.host_cpu)
    }
}

/// A target of the issue: met or not, and its line.
#[derive(Serialize)]
struct Verdict {
    name: &'static str,
    met: Option<bool>,
    line: String,
}

/// One line per target of the issue: met or missed, with the figures behind it.
fn targets(values: &Values) -> Vec<Verdict> {
    let mark = |ok: bool| if ok { "met   " } else { "MISSED" };
    let mut out = Vec::new();
    let lib = values.latency("library", 1);
    let floor = values.latency("c_floor", 1);
    match (&lib, &floor) {
        (Some(lib), Some(floor)) => {
            let r = lib.p50 / floor.p50;
            let parts = values.list("ratio.library_over_floor.w1.part_p50");
            let spread = range(&parts).map_or(String::new(), |(a, b)| {
                format!(", {a:.2}x to {b:.2}x over {} parts of the run", parts.len())
            });
            out.push(Verdict {
                name: "library_within_floor_factor",
                met: Some(r <= FLOOR_FACTOR),
                line: format!(
                    "target {} library p50 within {FLOOR_FACTOR}x of the C floor (1 watcher process each, same report): {} us vs {} us = {r:.2}x{spread}",
                    mark(r <= FLOOR_FACTOR),
                    lib.p50,
                    floor.p50
                ),
            });
        }
        _ => out.push(Verdict {
            name: "library_within_floor_factor",
            met: None,
            line: "target ?      library vs C floor: no figures".to_owned(),
        }),
    }
    match (values.latency("reread_100ms", 1), &lib) {
        (Some(reread), Some(lib)) => {
            let r = reread.p50 / lib.p50;
            out.push(Verdict {
                name: "library_beats_reread",
                met: Some(r >= REREAD_FACTOR),
                line: format!(
                    "target {} library p50 at least {REREAD_FACTOR}x better than re-reading every 100 ms: {} us / {} us = {r:.0}x",
                    mark(r >= REREAD_FACTOR),
                    reread.p50,
                    lib.p50
                ),
            });
        }
        _ => out.push(Verdict {
            name: "library_beats_reread",
            met: None,
            line: "target ?      library vs re-reading: no figures".to_owned(),
        }),
    }
    let by_syscall = values.get("idle.library.by_syscall").unwrap_or("?");
    match values.num("idle.library.syscalls") {
        Some(n) => {
            let mut line = format!(
                "target {} zero syscalls of an idle library watcher over {}s: {n} ({by_syscall})",
                mark(n == 0.0),
                values.get("idle.window_s").unwrap_or("?"),
            );
            if n > 0.0 {
                line.push_str(&format!(
                    "\n       the library watcher sleeps in poll without a timeout on luo's file (the module notifies before removal), so any call here is a regression; the C floor made {}",
                    values.get("idle.c_floor.syscalls").unwrap_or("?")
                ));
            }
            out.push(Verdict {
                name: "idle_library_zero_syscalls",
                met: Some(n == 0.0),
                line,
            });
        }
        None => out.push(Verdict {
            name: "idle_library_zero_syscalls",
            met: None,
            line: format!(
                "target ?      idle syscalls: {}",
                values.get("idle.library.syscalls").unwrap_or("no figure")
            ),
        }),
    }
    out
}

/// The headline figures as a table: the scaling of the library against the floor, the layers
/// between them, and the ioctl's cost.
fn table(values: &Values) -> Vec<String> {
    let mut rows = vec![
        "until the last watcher holds the new state (us), library vs C floor, each watcher its own process:".to_owned(),
        format!(
            "  {:>8}  {:>21}  {:>21}  {:>10}  {:>22}",
            "watchers", "library p50 / p99", "C floor p50 / p99", "ratio p50", "ratio p50 per tenth"
        ),
    ];
    for w in WATCHERS {
        let (Some(lib), Some(floor)) = (values.latency("library", w), values.latency("c_floor", w))
        else {
            continue;
        };
        let parts = values.list(&format!("ratio.library_over_floor.w{w}.part_p50"));
        let spread = range(&parts).map_or("-".to_owned(), |(a, b)| format!("{a:.2}-{b:.2}"));
        rows.push(format!(
            "  {w:>8}  {:>21}  {:>21}  {:>9.2}x  {spread:>22}",
            format!("{:.1} / {:.1}", lib.p50, lib.p99),
            format!("{:.1} / {:.1}", floor.p50, floor.p99),
            lib.p50 / floor.p50,
        ));
    }
    rows.push(
        "by layer, p50 (us) at 1 / 16 / 128 watchers, each relative to the C floor: where a difference goes:"
            .to_owned(),
    );
    for (program, what) in LAYERS {
        let cells: Vec<String> = WATCHERS
            .iter()
            .map(
                |&w| match (values.latency(program, w), values.latency("c_floor", w)) {
                    (Some(lat), Some(floor)) => {
                        format!("{:>8.1} ({:.2}x)", lat.p50, lat.p50 / floor.p50)
                    }
                    _ => format!("{:>16}", "-"),
                },
            )
            .collect();
        rows.push(format!("  {what:<46} {}", cells.join("  ")));
    }
    rows.push(
        "one wake's work, in the driver's thread with the change pending (no scheduling), ns p50 / p99:"
            .to_owned(),
    );
    for (layer, what) in [
        (
            "rust_raw",
            "the floor's loop in Rust: poll + pread + compare",
        ),
        ("kernfs", "library KernfsFile: wait + read_into + parse"),
        ("library", "library Watcher::next_change"),
    ] {
        let key = |what: &str| format!("wake_work.{layer}.{what}");
        if let (Some(p50), Some(p99)) = (values.num(&key("p50_ns")), values.num(&key("p99_ns"))) {
            rows.push(format!("  {what:<46} {p50:>8} / {p99:<8}"));
        }
    }
    if let Some(n) = values.get("wake_work.library.allocations_per_wake") {
        rows.push(format!("  heap allocations per library wake: {n}"));
    }
    rows.push(
        "SET_EVENT ioctl as its caller sees it (us): wall p50 / p99, the caller's CPU time p50 / p99:"
            .to_owned(),
    );
    for ioctl in values.ioctl() {
        rows.push(format!(
            "  {:>3} watchers  {:>8.1} / {:<8.1}  cpu {:>7.1} / {:<7.1}",
            ioctl.watchers, ioctl.p50, ioctl.p99, ioctl.cpu_p50, ioctl.cpu_p99
        ));
    }
    rows
}

/// How the figures were taken, for `report.json`.
const METHOD: &str = "Each watcher is a process of its own (the library's Watcher::next_change, \
    or the C floor's poll + pread), forked by one launcher per program, and reports each change \
    the same way: a CLOCK_MONOTONIC time taken once it holds the new state, in a 32-byte \
    record, one write(2) to a pipe. The driver takes a time before each SET_EVENT ioctl \
    (prepare and cancel in turn), waits for every report, then a random 1-5 ms gap. Latency is \
    the last report's time minus the time before the ioctl. The programs compared at one number \
    of watchers are all started and take turns in random order, one transition at a time with \
    1 watcher (blocks of 4 and 8 with 16 and 128), the others stopped (SIGSTOP takes them off \
    the wait queue), so that both meet the same host. The kernel's console is turned down to \
    warnings (the module's KERN_INFO line per transition still goes to the log buffer).";

/// `target/bench/report.json`: the machine, the headline figures in a structure, the
/// verdicts, and every line of the guest's report. Its keys, in this order, are what
/// `Documentation/bench/report.json` holds; a reader may rely on them.
#[derive(Serialize)]
struct Report<'v, 'a> {
    date_utc: String,
    machine: MachineJson,
    method: &'static str,
    latency_last_watcher_us: Vec<Scaling>,
    by_layer_us: Vec<ByLayer<'v, 'a>>,
    reread_100ms_us: Option<Latency>,
    one_wake_work_ns: WakeWork,
    #[serde(serialize_with = "figure_or_null")]
    library_allocations_per_wake: Option<f64>,
    ioctl_us: Vec<Ioctl>,
    targets: &'v [Verdict],
    lines: Lines<'v, 'a>,
}

/// The machine in words.
#[derive(Serialize)]
struct MachineJson {
    host: String,
    guest: String,
}

/// The library against the C floor at one number of watchers.
#[derive(Serialize)]
struct Scaling {
    watchers: u32,
    library: Option<Latency>,
    c_floor: Option<Latency>,
    ratio_p50: Option<Figure>,
    ratio_p99: Option<Figure>,
    ratio_part_p50: Vec<Figure>,
}

/// Each program of [`LAYERS`] at one number of watchers, keyed by the program's name.
struct ByLayer<'v, 'a> {
    watchers: u32,
    values: &'v Values<'a>,
}

impl Serialize for ByLayer<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // A map by hand: the keys are LAYERS' names, so the table and the report cannot
        // name a program differently.
        let mut map = serializer.serialize_map(Some(1 + LAYERS.len()))?;
        map.serialize_entry("watchers", &self.watchers)?;
        for (program, _) in LAYERS {
            map.serialize_entry(program, &self.values.latency(program, self.watchers))?;
        }
        map.end()
    }
}

/// One wake's work in the driver's thread, per layer.
#[derive(Serialize)]
struct WakeWork {
    rust_raw: Wake,
    kernfs: Wake,
    library: Wake,
}

/// One layer's wake work, in nanoseconds.
#[derive(Serialize)]
struct Wake {
    n: Option<Figure>,
    p50_ns: Option<Figure>,
    p99_ns: Option<Figure>,
}

impl Wake {
    fn of(values: &Values, layer: &str) -> Wake {
        let key = |what: &str| values.num(&format!("wake_work.{layer}.{what}")).map(Figure);
        Wake {
            n: key("n"),
            p50_ns: key("p50_ns"),
            p99_ns: key("p99_ns"),
        }
    }
}

/// The text of `target/bench/report.json`, indented, with a final newline.
fn report_json(
    values: &Values,
    verdicts: &[Verdict],
    machine: &Machine,
    now: u64,
) -> Result<String> {
    let report = Report {
        date_utc: report::utc(now),
        machine: MachineJson {
            host: machine.host(),
            guest: machine.guest.clone(),
        },
        method: METHOD,
        latency_last_watcher_us: WATCHERS
            .iter()
            .map(|&w| {
                let key = |what: &str| format!("ratio.library_over_floor.w{w}.{what}");
                Scaling {
                    watchers: w,
                    library: values.latency("library", w),
                    c_floor: values.latency("c_floor", w),
                    ratio_p50: values.num(&key("p50")).map(Figure),
                    ratio_p99: values.num(&key("p99")).map(Figure),
                    ratio_part_p50: values
                        .list(&key("part_p50"))
                        .into_iter()
                        .map(Figure)
                        .collect(),
                }
            })
            .collect(),
        by_layer_us: WATCHERS
            .iter()
            .map(|&watchers| ByLayer { watchers, values })
            .collect(),
        reread_100ms_us: values.latency("reread_100ms", 1),
        one_wake_work_ns: WakeWork {
            rust_raw: Wake::of(values, "rust_raw"),
            kernfs: Wake::of(values, "kernfs"),
            library: Wake::of(values, "library"),
        },
        library_allocations_per_wake: values.num("wake_work.library.allocations_per_wake"),
        ioctl_us: values.ioctl(),
        targets: verdicts,
        lines: values.lines(),
    };
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|err| format!("cannot write the report as JSON: {err}"))?;
    text.push('\n');
    Ok(text)
}

/// The picture: latency against watchers, library against floor.
fn chart<'a>(values: &Values, machine: &Machine, now: u64) -> svg::Chart<'a> {
    let points = |program: &str| {
        WATCHERS
            .iter()
            .map(|&w| values.latency(program, w))
            .collect::<Vec<_>>()
    };
    let tick_notes = WATCHERS
        .iter()
        .map(|&w| {
            values
                .num(&format!("ratio.library_over_floor.w{w}.p50"))
                .map_or(String::new(), |r| format!("library/floor p50: {r:.2}x"))
        })
        .collect();
    let counts: Vec<String> = WATCHERS
        .iter()
        .map(|&w| {
            values
                .latency("library", w)
                .map_or("?".to_owned(), |l| l.n.to_string())
        })
        .collect();
    svg::Chart {
        title: "luo: time from a transition until the last watcher holds the new state",
        subtitle: vec![
            format!("{}, {}", report::utc(now), machine.guest),
            format!(
                "host: {}; transitions per point: {}; each watcher its own process, both reporting the same way",
                machine.host(),
                counts.join(" / ")
            ),
        ],
        watchers: WATCHERS.to_vec(),
        tick_notes,
        series: vec![
            svg::Series {
                name: "library (Watcher::next_change)",
                color: "#0072B2",
                points: points("library"),
                label_side: -1.0,
            },
            svg::Series {
                name: "C floor (poll + pread)",
                color: "#D55E00",
                points: points("c_floor"),
                label_side: 1.0,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_from_the_report() {
        let lines = [
            "bench: latency.library.w1.n 500",
            "bench: latency.library.w1.p50_us 50.0",
            "bench: latency.library.w1.p99_us 80.0",
            "bench: latency.library.w1.min_us 40.0",
            "bench: latency.library.w1.max_us 90.0",
            "bench: latency.c_floor.w1.n 500",
            "bench: latency.c_floor.w1.p50_us 48.0",
            "bench: latency.c_floor.w1.p99_us 80.0",
            "bench: latency.c_floor.w1.min_us 40.0",
            "bench: latency.c_floor.w1.max_us 90.0",
            "bench: latency.reread_100ms.w1.n 100",
            "bench: latency.reread_100ms.w1.p50_us 50000.0",
            "bench: latency.reread_100ms.w1.p99_us 99000.0",
            "bench: latency.reread_100ms.w1.min_us 100.0",
            "bench: latency.reread_100ms.w1.max_us 99000.0",
            "bench: ratio.library_over_floor.w1.part_p50 1.01,1.06",
            "bench: idle.window_s 5",
            "bench: idle.library.syscalls 0",
            "bench: idle.library.by_syscall -",
        ];
        let values = Values::parse(&lines);
        let verdicts = targets(&values);
        assert_eq!(verdicts.len(), 3);
        assert!(
            verdicts.iter().all(|v| v.met == Some(true)),
            "{:?}",
            verdicts.iter().map(|v| &v.line).collect::<Vec<_>>()
        );
        assert!(verdicts[0].line.contains("1.01x to 1.06x over 2 parts"));
        let missed = targets(&Values::parse(&["bench: idle.library.syscalls 5"]));
        assert!(missed.iter().any(|v| v.met == Some(false)));
        let json = report_json(&values, &verdicts, &Machine::probe(&values), 0).unwrap();
        assert!(json.contains("\"date_utc\": \"1970-01-01 00:00 UTC\""));
        assert!(
            chart(&values, &Machine::probe(&values), 0)
                .render()
                .contains("50 µs")
        );
    }

    /// The published report, rewritten from its own guest lines, is the same JSON: the
    /// structure (keys, nesting, `null`s, whole numbers) has not changed under whatever reads it.
    #[test]
    fn the_published_report_comes_out_the_same() {
        let path = cache::workspace().join("Documentation/bench/report.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut published: serde_json::Value = serde_json::from_str(&text).unwrap();
        let lines: Vec<String> = published["lines"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => format!("bench: {key} {text}"),
                number => format!("bench: {key} {number}"),
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let values = Values::parse(&lines);
        let text = report_json(&values, &targets(&values), &Machine::probe(&values), 0).unwrap();
        assert!(text.ends_with("}\n"));
        let mut written: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The date and the host are this run's.
        for report in [&mut published, &mut written] {
            let object = report.as_object_mut().unwrap();
            object.remove("date_utc");
            object["machine"].as_object_mut().unwrap().remove("host");
        }
        assert_eq!(written, published);
        // The keys in the published order: serde_json::Value sorts them, so the text is read.
        let top: Vec<usize> = [
            "\"date_utc\"",
            "\"machine\"",
            "\"method\"",
            "\"latency_last_watcher_us\"",
            "\"by_layer_us\"",
            "\"reread_100ms_us\"",
            "\"one_wake_work_ns\"",
            "\"library_allocations_per_wake\"",
            "\"ioctl_us\"",
            "\"targets\"",
            "\"lines\"",
        ]
        .iter()
        .map(|key| text.find(&format!("\n  {key}: ")).unwrap())
        .collect();
        assert!(top.is_sorted(), "top-level keys out of order: {top:?}");
        assert!(text.contains("\"n\": 600,"), "counts are whole numbers");
    }
}
