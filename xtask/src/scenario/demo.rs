//! `cargo xtask demo [--runs N]`: the main job. Builds the kernel, `luo.ko` and the userspace,
//! boots a guest, and walks a live update across a real kexec while `luoctl watch` and an
//! agent run, then prints the timeline and the breakdown of where the time went, with the
//! median and range of each span over N runs.

use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::guest::runner::Stream;
use crate::run::{self, Result};
use crate::scenario::liveupdate;
use crate::scenario::timeline::{self, Mark, Timeline};

/// Runs the demo `--runs N` times (default 1); fails if any step of a cycle is missing or out
/// of order.
pub fn run(runs: usize) -> Result {
    let tools = liveupdate::prepare_tools()?;
    let mut timelines = Vec::new();
    for i in 1..=runs {
        run::step(&format!(
            "live update in a QEMU guest, run {i} of {runs} (TCG: two kernel boots)"
        ));
        let start = Instant::now();
        let show = i == 1;
        let timeline = liveupdate::cycle(&tools, |stream, line, at| {
            if let Some(shown) = worth_showing(stream, line).filter(|_| show) {
                eprintln!(
                    "    {:>6.1}s  {shown}",
                    at.saturating_duration_since(start).as_secs_f64()
                );
            }
        })?;
        timeline.verify()?;
        if show {
            print_timeline(&timeline);
        }
        eprintln!("    run {i}: {}", timeline::summary(&timeline));
        timelines.push(timeline);
    }
    println!();
    print!("{}", timeline::report(&timelines));
    Ok(())
}

/// The guest's own lines (agent, workload, luoctl, the script) and the kernel's lines about
/// luo and kexec; the rest of the console is boot noise.
fn worth_showing(stream: Stream, line: &str) -> Option<String> {
    let text = line.trim();
    match stream {
        Stream::Stdout => (!text.is_empty()).then(|| text.to_owned()),
        Stream::Console => {
            let message = text.split_once("] ").map_or(text, |(_, rest)| rest);
            let kernel = ["luo: ", "kexec_core: ", "Linux version"];
            kernel
                .iter()
                .any(|prefix| message.starts_with(prefix))
                .then(|| format!("kernel: {message}"))
        }
    }
}

fn print_timeline(timeline: &Timeline) {
    let Some((wall, mono)) = timeline.origin else {
        return;
    };
    let clock = |at: Instant| {
        let when = wall + at.saturating_duration_since(mono);
        let since_epoch = when.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since_epoch.as_secs() % 86_400;
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            since_epoch.subsec_millis()
        )
    };
    let base = timeline.at(Mark::Prepared).map(|seen| seen.host);
    println!();
    println!("Live update timeline (host clock, UTC, as the guest's lines reached the host)");
    for mark in Mark::ALL {
        let what = mark.what();
        match (timeline.at(mark), base) {
            (Some(seen), Some(base)) => println!(
                "  {}  +{:>6.2}s  {what}",
                clock(seen.host),
                seen.host.saturating_duration_since(base).as_secs_f64()
            ),
            _ => println!("  {:<12}  {:>8}  {what}: not seen", "-", "-"),
        }
    }
    let counter = |value: Option<u64>| value.map_or("?".to_owned(), |v| v.to_string());
    println!(
        "Workload counter: {} at the checkpoint, {} when it resumed in the new kernel",
        counter(timeline.checkpointed),
        counter(timeline.restored)
    );
}
