//! `cargo xtask demo`: the main job. Builds the kernel, luoctl and the workload, boots a
//! guest, and walks a live update across a real kexec driven by `luoctl agent` with the hooks
//! of `contrib/hooks`, while `luoctl watch` follows it; then prints the timeline and the
//! breakdown of where the time went, with the median and range of each span over N runs.
//!
//! By default luo is built in beside mainline's orchestrator (the in-tree kernel, booted with
//! `liveupdate=on`: the observer flavour), and the workload's memory itself crosses the kexec:
//! a memfd that the agent keeps in a session. `--standalone` walks luo's own v3 state machine
//! with luo.ko instead, where the hooks checkpoint the workload to a file.

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use luo_sysfs_abi::log;

use crate::build::kernel::Kernel;
use crate::build::{cache, module};
use crate::guest::console;
use crate::guest::runner::{self, GuestOptions, Stream};
use crate::run::{self, Result};
use crate::scenario::records::Record;
use crate::scenario::timeline::{self, Mark, Timeline};
use crate::scenario::{self, liveupdate};
use crate::series;

/// How much memory the observer flavour's workload keeps across the kexec, in MiB, unless told
/// otherwise (`cargo xtask demo --memory-mib`).
pub const DEFAULT_MEMORY_MIB: u64 = 256;

/// The guest script, run in both boots; see its header.
const SCRIPT: &str = include_str!("../../../tests/guest-scripts/demo.sh");

/// What `cargo xtask demo` was asked for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How many live updates to walk.
    pub runs: usize,
    /// luo's own v3 state machine (luo.ko) instead of luo beside mainline LUO.
    pub standalone: bool,
    /// How much memory the workload keeps across the kexec (observer flavour).
    pub memory_mib: u64,
}

/// Runs the demo `runs` times; fails if any step of a cycle is missing or out of order, or the
/// workload did not resume with the memory it had.
pub fn run(options: Options) -> Result {
    let guest = Guest::build(options.standalone)?;
    let mut timelines = Vec::new();
    for i in 1..=options.runs {
        run::step(&format!(
            "live update in a QEMU guest ({}), run {i} of {} (TCG: two kernel boots)",
            guest.describe(options.memory_mib),
            options.runs
        ));
        let start = Instant::now();
        let show = i == 1;
        let timeline = guest.cycle(options.memory_mib, |stream, line, at| {
            if let Some(shown) = worth_showing(stream, line).filter(|_| show) {
                eprintln!(
                    "    {:>6.1}s  {shown}",
                    at.saturating_duration_since(start).as_secs_f64()
                );
            }
        })?;
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

/// The kernel, and luo.ko for the standalone flavour, with the userspace built.
pub struct Guest {
    kernel_build: PathBuf,
    ko: Option<PathBuf>,
    dir: PathBuf,
}

impl Guest {
    /// Builds (or takes from the cache) what a flavour's demo boots.
    pub fn build(standalone: bool) -> Result<Self> {
        if standalone {
            let module = module::ensure()?;
            Self::new(module.kernel.build.clone(), Some(module.ko.clone()))
        } else {
            Self::observer(&series::tree::in_tree_kernel()?)
        }
    }

    /// The observer flavour's demo on `kernel`, the in-tree kernel.
    pub fn observer(kernel: &Kernel) -> Result<Self> {
        Self::new(kernel.build.clone(), None)
    }

    fn new(kernel_build: PathBuf, ko: Option<PathBuf>) -> Result<Self> {
        // Only what the demo's script runs: the observer flavour needs no module, nor its
        // kernel, which a newcomer's first demo would otherwise build for nothing.
        liveupdate::build_userspace()?;
        Ok(Guest {
            kernel_build,
            ko,
            dir: cache::scratch("demo")?,
        })
    }

    fn describe(&self, memory_mib: u64) -> String {
        match self.ko {
            Some(_) => "standalone v3 flavour, luo.ko".to_owned(),
            None => format!("luo beside mainline LUO, {memory_mib} MiB kept across the kexec"),
        }
    }

    /// One live update, watched line by line through `on_line`; checked before it returns.
    pub fn cycle(
        &self,
        memory_mib: u64,
        mut on_line: impl FnMut(Stream, &str, Instant),
    ) -> Result<Timeline> {
        liveupdate::clear(&self.dir)?;
        let path = |relative: &str| {
            runner::shell_quote(&cache::workspace().join(relative).to_string_lossy())
        };
        let script = format!(
            "LUOCTL={luoctl}\nWORKLOAD={workload}\nCOUNTER={counter}\nHOOKS={hooks}\n\
             BZIMAGE={bz}\nDIR={dir}\nMIB={memory_mib}\nKO={ko}\n{lib}{SCRIPT}",
            lib = scenario::SCRIPT_LIB,
            luoctl = path("target/debug/luoctl"),
            workload = path("target/debug/examples/workload"),
            counter = path("target/debug/examples/counter"),
            hooks = path("contrib/hooks"),
            bz = runner::shell_quote(
                &self
                    .kernel_build
                    .join("arch/x86/boot/bzImage")
                    .to_string_lossy()
            ),
            dir = runner::shell_quote(&self.dir.to_string_lossy()),
            ko = self
                .ko
                .as_ref()
                .map_or_else(String::new, |ko| runner::shell_quote(&ko.to_string_lossy())),
        );
        let options = GuestOptions {
            rw_dirs: vec![self.dir.clone()],
            append: if self.ko.is_some() {
                Vec::new()
            } else {
                vec!["liveupdate=on".to_owned()]
            },
            ..GuestOptions::default()
        };
        let mut timeline = Timeline::new();
        let guest = runner::run_in_guest_with(
            &self.kernel_build,
            &script,
            &options,
            |stream, line, at| {
                timeline.see(stream, line, at);
                on_line(stream, line, at);
            },
        )?;
        let what = "the demo's live update";
        if !guest.success() {
            return Err(runner::failure_report(what, &guest));
        }
        // A cycle that ended without its steps shows what the guest said, not only which mark
        // is missing.
        timeline
            .verify()
            .map_err(|err| runner::failure_report(&format!("{what}: {err};"), &guest))?;
        Ok(timeline)
    }
}

/// The guest's own lines (agent, workload, luoctl, the script) and the kernel's lines about
/// luo and kexec; the rest of the console is boot noise.
fn worth_showing(stream: Stream, line: &str) -> Option<String> {
    let text = line.trim();
    match stream {
        // The agent's JSON records feed the timeline; its log lines say the same for a person.
        Stream::Stdout if matches!(Record::parse(text), Some(Record::Agent(_))) => None,
        Stream::Stdout => (!text.is_empty()).then(|| text.to_owned()),
        Stream::Console => {
            let message = text.split_once("] ").map_or(text, |(_, rest)| rest);
            // luo's lines and mainline orchestrator's, which share luo's prefix.
            let kernel = [log::PREFIX, console::KEXEC_JUMP, console::LINUX_VERSION];
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
    let shown = |value: Option<u64>| value.map_or("?".to_owned(), |v| v.to_string());
    println!(
        "Workload counter: {} last seen in the old kernel, resumed at {} in the new one",
        shown(timeline.checkpointed),
        shown(timeline.restored)
    );
    if let (Some(before), Some(after)) = (&timeline.check_before, &timeline.check_after) {
        println!(
            "Workload memory: {} MiB, check {before:016x} before the kexec and {after:016x} after{}",
            shown(timeline.memory_mib),
            if before == after {
                ": the same"
            } else {
                ": DIFFERENT"
            }
        );
    }
}
