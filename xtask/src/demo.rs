//! `cargo xtask demo`: the main job. Builds the kernel, `luo.ko` and the userspace, boots a
//! guest, and walks a live update across a real kexec while `luoctl watch` and an agent run,
//! then prints the timeline as the host saw it.

use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::liveupdate;
use crate::timeline::{self, Timeline};
use crate::run::{self, Result};
use crate::vm::Stream;

/// Runs the demo; fails if any step of the cycle is missing or out of order.
pub fn run() -> Result {
    let tools = liveupdate::prepare_tools()?;
    run::step("live update in a QEMU guest (TCG: two kernel boots, about a minute)");
    let start = Instant::now();
    let timeline = liveupdate::cycle(&tools, |stream, line, at| {
        if let Some(shown) = worth_showing(stream, line) {
            eprintln!(
                "    {:>6.1}s  {shown}",
                at.saturating_duration_since(start).as_secs_f64()
            );
        }
    })?;
    print_timeline(&timeline);
    timeline.verify()
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
    let base = timeline.prepared;
    let rows = [
        (
            "prepared",
            timeline.prepared,
            "luoctl prepare: the agent checkpoints its workload",
        ),
        (
            "frozen",
            timeline.frozen,
            "the kexec reboot froze the state: blackout begins",
        ),
        (
            "kexec",
            timeline.jump,
            "the old kernel jumps into the new one",
        ),
        (
            "updated",
            timeline.updated,
            "the new kernel's luo found the handover",
        ),
        (
            "normal",
            timeline.normal,
            "the agent restored the workload and said finish",
        ),
    ];
    println!();
    println!("Live update timeline (host clock, UTC, as the guest's console reached the host)");
    for (state, at, what) in rows {
        match (at, base) {
            (Some(at), Some(base)) => println!(
                "  {}  +{:>6.2}s  {state:<9} {what}",
                clock(at),
                at.saturating_duration_since(base).as_secs_f64()
            ),
            _ => println!("  {:<12}  {:>8}  {state:<9} {what}: not seen", "-", "-"),
        }
    }
    let counter = |value: Option<u64>| value.map_or("?".to_owned(), |v| v.to_string());
    println!(
        "Workload counter: {} at the checkpoint, {} when it resumed in the new kernel",
        counter(timeline.checkpointed),
        counter(timeline.restored)
    );
    println!("Window: {}", timeline::summary(timeline));
}
