//! Fault injection: every injectable allocation of the module's load fails in turn, from a few
//! calls before luo's init until a load into which no fault was injected. Each time:
//! - a load that fails logs exactly one error line of luo's (none when the fault landed in the
//!   module loader, before init), leaves nothing behind (no `/sys/kernel/liveupdate`, no
//!   `/dev/liveupdate`, no test hook, no KHO subtree, no `/sys/module/luo`), and the next load,
//!   with nothing armed, succeeds whole;
//! - a load that goes on (the kernel absorbed the failure: kmemleak's own metadata falls back
//!   to its pool, KHO's debugfs view of a subtree is optional, ...) is whole: ready, no error
//!   line, its state `normal`, its record registered in KHO's FDT; a load that went on without
//!   its record must say so in one warning (the KHO fallback);
//! - nothing splats: no WARN, no lockdep report, no `slub_debug` report (the guest boots with
//!   `slub_debug=FZPU kmemleak=on`), no BUG or oops; and the kernel's count of WARNs
//!   (`/sys/kernel/warn_count`) agrees, so a WARN whose lines the log lost fails too. One WARN
//!   is KHO's and expected: a fault in the debugfs view of the record that `kho_add_subtree`
//!   registered warns (once a boot) and the load goes on; it is excused on such a load only.
//!
//! Meanwhile another thread opens `/dev/liveupdate` in a loop (and asks its state): no oops,
//! and the module unloads each time once that thread lets go. At the end kmemleak scans for
//! anything any load leaked. Then the failures failslab cannot reach: the misc device name
//! taken (the squatter module) refuses the load with one line and leaves nothing behind, and
//! luo's KHO subtree name taken (the squatter with `kho_subtree=1`) lets luo load without its
//! record, with one warning, as with `kho=off`. failslab never reaches that fallback:
//! `kho_alloc_preserve` takes whole pages and `kho_add_subtree` edits the FDT in place, so
//! only the squatter covers it. Elsewhere: the boots with `kho=off` and `debugfs=off`
//! (`boot_faults.rs`, a guest each) and kernels without debugfs or KHO (`config-matrix`).
//!
//! How: each load is a `finit_module(2)` from a thread of its own, which writes N to
//! `/proc/thread-self/fail-nth` just before the call; the kernel then fails exactly the Nth
//! injectable call of that thread (failslab's, with `ignore-gfp-wait=N` so that sleeping
//! allocations count; nothing else in this kernel injects), and reading the file back right
//! after the call says whether it did (0) or how many calls the load made. No other task is
//! armed and failslab's own probability stays 0, so nothing else of the test can fail (the
//! byte budget of `space` with `task-filter` that this replaces left the test unable to spawn
//! `rmmod` after the first armed load). Where init starts is measured by a load the squatter
//! refuses in `preflight`, before init allocates anything; the loader's count varies between
//! loads, so the sweep starts a few calls earlier, and its first fault must land before init
//! (else it starts earlier still), so that no call of init is skipped.
//!
//! The host shows the summary line: points failed, leaks, splats, and how the points split.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use luo_state::State;
use luo_sysfs_abi::log::Kind;
use luo_sysfs_abi::path::{DEVICE_PATH, SYSFS_DIR};

use crate::kmsg::{self, Kmsg, Line, join_lines, luo_errors};
use crate::{Outcome, dev, ensure, module, sysfs};

const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
const KHO_SUBTREE: &str = "/sys/kernel/debug/kho/out/sub_fdts/luo-v3-state";
const KHO_FDT: &str = "/sys/kernel/debug/kho/out/fdt";
const HOOK_DIR: &str = "/sys/kernel/debug/liveupdate";
const MODULE_DIR: &str = "/sys/module/luo";

/// The line luo logs when it starts, before it allocates anything: init ran (a failure before
/// it logs nothing of luo's).
const INIT_RAN: Kind = Kind::NotALiveUpdate;
/// The line of a load that registered no handover record and went on.
const KHO_FALLBACK: Kind = Kind::KhoSubtreeRefused;

/// The function whose `WARN_ON_ONCE` fires when KHO cannot create the debugfs view of a subtree
/// it registered: KHO's own warning about an optional view, which the sweep's faults reach.
pub const KHO_VIEW_WARNING: &str = " at kho_add_subtree+";

/// The `fail-nth` of the load that measures where init starts: more calls than any load makes.
const UNLIMITED: u32 = 1 << 30;
/// How many calls before the measured start of init the sweep starts. The refused load's count
/// is near where init starts (in runs so far 6 to 20 calls before it: counts vary between
/// loads), and the sweep checks that its first fault lands before init.
const MARGIN: u32 = 3;
/// At most this many loads, whatever the sweep finds.
const MAX_LOADS: u32 = 2000;

/// Runs the sweep and the squatter checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    let squatter = std::env::var_os("LUO_SQUATTER_KO")
        .map(PathBuf::from)
        .ok_or("LUO_SQUATTER_KO is not set: run this test through cargo xtask test-kernel")?;
    module::mount_debugfs()?;
    let warnings = kmsg::warn_count()?;
    let mut log = Kmsg::open()?;
    kmemleak("scan")?;
    kmemleak("clear")?;
    arm_failslab()?;
    // Before the opener starts: it would hold the squatter's device open.
    let start = init_start(ko, &squatter, &mut log)?;

    let stop = Arc::new(AtomicBool::new(false));
    let opens = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let opener = {
        let (stop, opens, wrong) = (stop.clone(), opens.clone(), wrong.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match dev::open() {
                    Ok(file) => {
                        if dev::get_state(&file) != Ok(State::Normal) {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                        opens.fetch_add(1, Ordering::Relaxed);
                    }
                    // No device: do not spin the guest's CPUs away from the loads.
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        })
    };
    let swept = sweep(ko, start, &mut log);
    stop.store(true, Ordering::Relaxed);
    let _ = opener.join();
    let summary = swept?;
    squatters(ko, &squatter, &mut log)?;
    let warned = kmsg::warn_count()? - warnings;
    ensure!(
        warned == summary.kho_view_warnings,
        "the kernel counts {warned} WARNs during the test, its log showed {} (KHO's about its \
         debugfs view): a WARN's lines were lost",
        summary.kho_view_warnings
    );

    let leaks = leaks()?;
    println!(
        "note: faults: {} allocation points failed in turn, {} leaks, {} splats ({} loads; \
         {} failed before luo's init; then {} refused the load, {} went on without the KHO \
         record, {} were absorbed by the kernel ({} of them in KHO's debugfs view of the record; KHO's \
         warnings about that view: {}); {} opens of {DEVICE_PATH} meanwhile)",
        summary.points(),
        leaks.len(),
        summary.splats,
        summary.loads,
        summary.before_init,
        summary.refused,
        summary.fallbacks,
        summary.absorbed,
        summary.unshown,
        summary.kho_view_warnings,
        opens.load(Ordering::Relaxed)
    );
    ensure!(
        leaks.is_empty(),
        "kmemleak reports {} leaks; the first:\n{}",
        leaks.len(),
        leaks[..leaks.len().min(3)].join("\n")
    );
    let wrong = wrong.load(Ordering::Relaxed);
    ensure!(
        wrong == 0,
        "{wrong} opens of {DEVICE_PATH} did not read the state [normal] with GET_STATE"
    );
    ensure!(
        summary.refused > 0,
        "no fault in luo's init refused the load"
    );
    Ok(())
}

#[derive(Default)]
struct Summary {
    loads: u32,
    /// Faults in the module loader, before luo's init ran.
    before_init: u32,
    /// Faults that failed the load after luo's init started.
    refused: u32,
    /// Faults that made luo go on without its KHO record.
    fallbacks: u32,
    /// Faults after init started that the load survived whole (kmemleak's own metadata,
    /// allocations whose failure the kernel tolerates).
    absorbed: u32,
    /// Absorbed faults that cost KHO's debugfs view of the record (KHO's, not luo's).
    unshown: u32,
    /// KHO's warnings about that view, excused ([`KHO_VIEW_WARNING`]).
    kho_view_warnings: u64,
    splats: u32,
}

impl Summary {
    fn points(&self) -> u32 {
        self.before_init + self.refused + self.fallbacks + self.absorbed
    }

    /// Counts a point of the sweep by where its fault landed. Only the sweep counts: the loads
    /// that look for its start fail calls that it fails again.
    fn count(&mut self, point: Point) {
        match point {
            Point::None => {}
            Point::BeforeInit => self.before_init += 1,
            Point::Refused => self.refused += 1,
            Point::Fallback => self.fallbacks += 1,
            Point::Absorbed { unshown } => {
                self.absorbed += 1;
                self.unshown += u32::from(unshown);
            }
        }
    }
}

/// What one `finit_module` did.
struct Load {
    /// Its errno, 0 when the module loaded.
    errno: i32,
    /// Whether `fail-nth` injected its fault.
    injected: bool,
    /// Injectable calls the load made (up to the failed one, when injected).
    calls: u32,
}

impl Load {
    fn loaded(&self) -> bool {
        self.errno == 0
    }
}

/// failslab's settings for `fail-nth`: every slab allocation counts, sleeping ones included;
/// nothing fails by probability, and a failure logs nothing (`verbose=0`: no stack dump).
fn arm_failslab() -> Outcome {
    for (knob, value) in [
        ("probability", "0"),
        ("times", "0"),
        ("verbose", "0"),
        ("task-filter", "N"),
        ("ignore-gfp-wait", "N"),
        ("cache-filter", "N"),
    ] {
        write(&format!("{FAILSLAB}/{knob}"), value)?;
    }
    Ok(())
}

/// Loads `ko` with `selftest=1` by `finit_module(2)` from a thread of its own, which fails its
/// `nth` injectable call (none when `nth` is 0). The files are opened first and the count is
/// read back at once after the call, so it counts the load's calls alone.
fn finit(ko: &Path, nth: u32) -> Result<Load, String> {
    let file = File::open(ko).map_err(|err| format!("{}: {err}", ko.display()))?;
    let loader = std::thread::spawn(move || -> Result<Load, String> {
        let mut knob = OpenOptions::new()
            .read(true)
            .write(true)
            .open(FAIL_NTH)
            .map_err(|err| format!("{FAIL_NTH}: {err}"))?;
        if nth > 0 {
            knob.write_all(nth.to_string().as_bytes())
                .map_err(|err| format!("writing {nth} to {FAIL_NTH}: {err}"))?;
        }
        // SAFETY: `file` is an open file, the parameters a NUL-terminated string; the call
        // reads both and keeps neither.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                file.as_raw_fd(),
                c"selftest=1".as_ptr(),
                0,
            )
        };
        let errno = if ret == 0 {
            0
        } else {
            io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        };
        let mut buf = [0u8; 16];
        let len = knob
            .read_at(&mut buf, 0)
            .map_err(|err| format!("reading {FAIL_NTH}: {err}"))?;
        // Disarm before anything else of this thread allocates.
        knob.write_all(b"0")
            .map_err(|err| format!("writing 0 to {FAIL_NTH}: {err}"))?;
        let text = String::from_utf8_lossy(&buf[..len]);
        let left: u32 = text
            .trim()
            .parse()
            .map_err(|err| format!("{FAIL_NTH} '{}': {err}", text.trim()))?;
        let injected = nth > 0 && left == 0;
        Ok(Load {
            errno,
            injected,
            calls: if injected { nth } else { nth - left },
        })
    });
    loader
        .join()
        .map_err(|_| "the loading thread panicked".to_owned())?
}

/// The number of injectable calls the load of `ko` makes before luo's init allocates anything:
/// a load the squatter refuses in `preflight`, which allocates nothing.
fn init_start(ko: &Path, squatter: &Path, log: &mut Kmsg) -> Result<u32, String> {
    module::insmod(squatter, &[])?;
    let refused = finit(ko, UNLIMITED)?;
    module::rmmod_named("liveupdate_squatter")?;
    let mut summary = Summary::default();
    check_new_lines(
        log,
        "the load next to the squatter",
        &mut summary,
        Excuse::None,
    )?;
    ensure!(!refused.loaded(), "luo loaded next to the squatter");
    ensure!(
        !refused.injected,
        "a fault was injected with fail-nth at {UNLIMITED}"
    );
    ensure!(
        refused.calls > 0,
        "the refused load made no injectable call"
    );
    Ok(refused.calls)
}

/// Fails each injectable call in turn, from a few before init starts, until a load into which
/// no fault was injected.
fn sweep(ko: &Path, start: u32, log: &mut Kmsg) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let mut first = start.saturating_sub(MARGIN).max(1);
    // The first fault must land before init: otherwise init's first calls may be skipped.
    // These loads count in the summary's loads, warnings and splats, but their points only
    // once the sweep reaches them (the last, before init, is the sweep's first).
    loop {
        let point = armed_load(ko, first, log, &mut summary)?;
        ensure!(
            point != Point::None,
            "no fault was injected at call {first}, which the refused load reached"
        );
        let back = match point {
            Point::BeforeInit => {
                summary.count(point);
                break;
            }
            // The load went on whole, so the fault may have landed before init as well as in
            // it: many of the loader's calls are allocations whose failure the kernel absorbs
            // (kmemleak's own bookkeeping among them). One call back, then: jumping back as for
            // a fault surely in init would, after a few absorbed faults in a row, reach the
            // loader's first calls, whose failure the kernel reports with a stack dump.
            Point::Absorbed { .. } => 1,
            Point::None | Point::Refused | Point::Fallback => 4 * MARGIN,
        };
        ensure!(
            first > 1,
            "no fault lands before luo's init, even the first call's"
        );
        eprintln!("faults: call {first} may be in luo's init already; starting earlier");
        first = first.saturating_sub(back).max(1);
    }
    let mut nth = first + 1;
    loop {
        ensure!(
            summary.loads < MAX_LOADS,
            "the sweep took more than {MAX_LOADS} loads"
        );
        let point = armed_load(ko, nth, log, &mut summary)?;
        summary.count(point);
        if point == Point::None {
            unload()?;
            eprintln!(
                "faults: the sweep ends at call {nth} (luo's init starts after about {start})"
            );
            return Ok(summary);
        }
        nth += 1;
    }
}

/// Where a fault landed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Point {
    /// No fault was injected: the load made fewer calls, and succeeded (still loaded).
    None,
    BeforeInit,
    Refused,
    Fallback,
    /// The load went on whole; `unshown`: without KHO's debugfs view of its record.
    Absorbed {
        unshown: bool,
    },
}

/// Loads `ko` failing its `nth` injectable call and checks the outcome: a failed load logged
/// one error line of luo's (none before init), left nothing behind, and the next load succeeds;
/// a load that went on is whole. Leaves luo loaded only when no fault was injected. Counts the
/// loads, KHO's excused warnings and the splats in `summary`; the caller counts the point.
fn armed_load(ko: &Path, nth: u32, log: &mut Kmsg, summary: &mut Summary) -> Result<Point, String> {
    let load = finit(ko, nth)?;
    summary.loads += 1;
    if summary.loads.is_multiple_of(25) {
        eprintln!(
            "faults: {} loads, {} points, now at call {nth}",
            summary.loads,
            summary.points()
        );
    }
    let context = format!("the load failing its injectable call {nth}");
    let (lines, kho_view_warned) = check_new_lines(log, &context, summary, Excuse::KhoView)?;
    if !load.injected {
        ensure!(
            load.loaded(),
            "{context}: no fault was injected ({} calls made), yet the load failed (errno {}):\n{}",
            load.calls,
            load.errno,
            join_lines(&lines)
        );
        check_loaded(&lines, &context, Record::Shown)?;
        unexpected_kho_view_warning(kho_view_warned, &context, &lines)?;
        return Ok(Point::None);
    }
    let init_ran = lines.iter().any(|l| l.luo() == Some(INIT_RAN));
    if load.loaded() {
        let fallback = lines.iter().any(|l| l.luo() == Some(KHO_FALLBACK));
        ensure!(
            init_ran,
            "{context}: the load succeeded, yet luo's init did not log its '{}' line:\n{}",
            INIT_RAN.opening(),
            join_lines(&lines)
        );
        let record = if fallback {
            Record::Absent
        } else {
            Record::Registered
        };
        check_loaded(&lines, &context, record)?;
        let unshown = record == Record::Registered && !Path::new(KHO_SUBTREE).exists();
        if !unshown {
            unexpected_kho_view_warning(kho_view_warned, &context, &lines)?;
        }
        unload()?;
        return Ok(if fallback {
            Point::Fallback
        } else {
            Point::Absorbed { unshown }
        });
    }
    unexpected_kho_view_warning(kho_view_warned, &context, &lines)?;
    let errors = luo_errors(&lines);
    let expected = usize::from(init_ran);
    ensure!(
        errors == expected,
        "{context}: expected {expected} error line from luo, got {errors}:\n{}",
        join_lines(&lines)
    );
    for path in [SYSFS_DIR, DEVICE_PATH, KHO_SUBTREE, HOOK_DIR, MODULE_DIR] {
        ensure!(
            !Path::new(path).exists(),
            "{context}: the failed load (errno {}) left {path} behind",
            load.errno
        );
    }
    // The next load must succeed, with nothing armed.
    let clean = finit(ko, 0)?;
    let (lines, _) = check_new_lines(
        log,
        &format!("the load after {context}"),
        summary,
        Excuse::None,
    )?;
    ensure!(
        clean.loaded(),
        "the load after {context} failed (errno {}):\n{}",
        clean.errno,
        join_lines(&lines)
    );
    check_loaded(&lines, &format!("the load after {context}"), Record::Shown)?;
    unload()?;
    Ok(if init_ran {
        Point::Refused
    } else {
        Point::BeforeInit
    })
}

/// What a load that went on shows of its handover record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Registered in KHO's outgoing FDT and shown in KHO's debugfs.
    Shown,
    /// Registered; KHO's debugfs view may be missing: KHO warns of a failure to create it
    /// ([`KHO_VIEW_WARNING`], once a boot) and goes on, so a fault injected there leaves a
    /// registered record without its file.
    Registered,
    /// Not registered: luo went on as with `kho=off`.
    Absent,
}

/// Checks a load that went on: it said it is ready and logged no error, and its state, device,
/// test hook and handover record are there as `record` says.
fn check_loaded(lines: &[Line], context: &str, record: Record) -> Outcome {
    ensure!(
        luo_errors(lines) == 0 && lines.iter().any(|l| l.luo() == Some(Kind::Ready)),
        "{context}: the load succeeded, but its lines are not a ready luo's:\n{}",
        join_lines(lines)
    );
    for path in [SYSFS_DIR, DEVICE_PATH, HOOK_DIR] {
        ensure!(
            Path::new(path).exists(),
            "{context}: the load succeeded without {path}"
        );
    }
    let registered = record_registered()?;
    let shown = Path::new(KHO_SUBTREE).exists();
    let fits = match record {
        Record::Shown => registered && shown,
        Record::Registered => registered,
        Record::Absent => !registered && !shown,
    };
    ensure!(
        fits,
        "{context}: the load succeeded with its handover record {} in KHO's FDT and {} in \
         {KHO_SUBTREE}:\n{}",
        if registered {
            "registered"
        } else {
            "not registered"
        },
        if shown { "shown" } else { "not shown" },
        join_lines(lines)
    );
    let state = sysfs::read_fresh()?;
    ensure!(
        state == State::Normal,
        "{context}: the state is [{state}] after a cold boot"
    );
    Ok(())
}

/// Whether KHO's outgoing FDT has luo's subtree: its node name is in the FDT's structure block.
fn record_registered() -> Result<bool, String> {
    let fdt = fs::read(KHO_FDT).map_err(|err| format!("{KHO_FDT}: {err}"))?;
    let name = luo_state::record::KHO_SUBTREE.to_bytes_with_nul();
    Ok(fdt.windows(name.len()).any(|w| w == name))
}

/// Which warning a load may cause.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Excuse {
    None,
    /// KHO's about the debugfs view of the record ([`KHO_VIEW_WARNING`]): the armed load's.
    KhoView,
}

/// The kernel log's new lines, failing on a splat; with [`Excuse::KhoView`], KHO's warning
/// about its debugfs view is taken out of them (and counted), and the flag says it was there.
fn check_new_lines(
    log: &mut Kmsg,
    context: &str,
    summary: &mut Summary,
    excuse: Excuse,
) -> Result<(Vec<Line>, bool), String> {
    let mut lines = log.take()?;
    let warned = excuse == Excuse::KhoView && kmsg::take_warnings(&mut lines, KHO_VIEW_WARNING) > 0;
    if warned {
        summary.kho_view_warnings += 1;
    }
    if lines.iter().any(|l| kmsg::is_splat(&l.text)) {
        summary.splats += 1;
        return Err(format!(
            "{context}: the kernel log has a splat:\n{}",
            join_lines(&lines)
        ));
    }
    Ok((lines, warned))
}

/// Fails when KHO warned about the debugfs view of the record, yet the load is not one that went
/// on with its record registered and unshown: the warning then has another cause.
fn unexpected_kho_view_warning(warned: bool, context: &str, lines: &[Line]) -> Outcome {
    ensure!(
        !warned,
        "{context}: KHO warned that it could not show the record in debugfs, yet the load did \
         not go on with the record registered and unshown:\n{}",
        join_lines(lines)
    );
    Ok(())
}

/// The squatters: the misc device name taken refuses the load with one line; luo's KHO subtree
/// name taken lets luo load without its record, with one warning.
fn squatters(ko: &Path, squatter: &Path, log: &mut Kmsg) -> Outcome {
    module::insmod(squatter, &[])?;
    ensure!(
        module::insmod(ko, &["selftest=1"]).is_err(),
        "luo loaded next to the misc device squatter"
    );
    module::rmmod_named("liveupdate_squatter")?;
    let lines = log.take()?;
    let errors = luo_errors(&lines);
    ensure!(
        errors == 1,
        "the refusal next to the squatter logged {errors} error lines:\n{}",
        join_lines(&lines)
    );
    for path in [SYSFS_DIR, DEVICE_PATH, KHO_SUBTREE, HOOK_DIR, MODULE_DIR] {
        ensure!(
            !Path::new(path).exists(),
            "the refusal next to the squatter left {path} behind"
        );
    }

    module::insmod(squatter, &["kho_subtree=1"])?;
    module::insmod(ko, &["selftest=1"])
        .map_err(|err| format!("luo next to a squatter of its KHO subtree: {err}"))?;
    let lines = log.take()?;
    let fallbacks = lines
        .iter()
        .filter(|l| l.luo() == Some(KHO_FALLBACK))
        .count();
    ensure!(
        fallbacks == 1,
        "with its KHO subtree taken, luo logged '{}' {fallbacks} times:\n{}",
        KHO_FALLBACK.opening(),
        join_lines(&lines)
    );
    ensure!(
        luo_errors(&lines) == 0 && Path::new(SYSFS_DIR).exists(),
        "with its KHO subtree taken, luo is not ready:\n{}",
        join_lines(&lines)
    );
    module::rmmod()?;
    module::rmmod_named("liveupdate_squatter")?;
    ensure!(
        !Path::new(KHO_SUBTREE).exists(),
        "{KHO_SUBTREE} is left after both modules went"
    );
    let lines = log.take()?;
    ensure!(
        !lines.iter().any(|l| kmsg::is_splat(&l.text)),
        "the squatter checks splat:\n{}",
        join_lines(&lines)
    );
    Ok(())
}

/// Unloads luo by `delete_module(2)`, retried while the opener holds the device (an open file
/// pins the module).
fn unload() -> Outcome {
    let mut last = io::Error::from_raw_os_error(0);
    for _ in 0..400 {
        // SAFETY: the name is a NUL-terminated string the call only reads.
        let ret =
            unsafe { libc::syscall(libc::SYS_delete_module, c"luo".as_ptr(), libc::O_NONBLOCK) };
        if ret == 0 {
            return Ok(());
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EAGAIN) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("unloading luo: {last}"))
}

/// Scans twice after the objects' minimum age (5 s) and returns kmemleak's reports.
fn leaks() -> Result<Vec<String>, String> {
    std::thread::sleep(std::time::Duration::from_secs(6));
    kmemleak("scan")?;
    kmemleak("scan")?;
    let report = fs::read_to_string(KMEMLEAK).map_err(|err| format!("{KMEMLEAK}: {err}"))?;
    let mut leaks = Vec::new();
    for entry in report.split("unreferenced object").skip(1) {
        leaks.push(format!("unreferenced object{entry}"));
    }
    Ok(leaks)
}

fn kmemleak(command: &str) -> Outcome {
    write(KMEMLEAK, command)
}

fn write(path: &str, value: &str) -> Outcome {
    fs::write(path, value).map_err(|err| format!("writing '{value}' to {path}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<Line> {
        texts
            .iter()
            .map(|text| Line {
                level: 4,
                text: (*text).to_owned(),
            })
            .collect()
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn khos_view_warning_is_taken_out_whole() {
        let mut log = lines(&[
            "luo: Not a live update",
            "------------[ cut here ]------------",
            "WARNING: kernel/liveupdate/kexec_handover.c:1091 at kho_add_subtree+0x1c5/0x210, \
             CPU#1: luo-guest-tests/81",
            "Modules linked in: luo(+)",
            "Call Trace:",
            "---[ end trace 0000000000000000 ]---",
            "luo: Ready in state [normal]",
        ]);
        assert_eq!(kmsg::take_warnings(&mut log, KHO_VIEW_WARNING), 1);
        assert_eq!(
            texts(&log),
            [
                "luo: Not a live update",
                "------------[ cut here ]------------",
                "luo: Ready in state [normal]"
            ]
        );
        assert!(!log.iter().any(|l| kmsg::is_splat(&l.text)));
    }

    #[test]
    fn a_warning_without_its_end_does_not_take_the_next_splat_along() {
        let mut log = lines(&[
            "WARNING: kernel/liveupdate/kexec_handover.c:1091 at kho_add_subtree+0x1c5/0x210, \
             CPU#1: luo-guest-tests/81",
            "Call Trace:",
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "Call Trace:",
            "luo: Ready in state [normal]",
        ]);
        assert_eq!(kmsg::take_warnings(&mut log, KHO_VIEW_WARNING), 1);
        assert_eq!(
            texts(&log),
            [
                "BUG: kernel NULL pointer dereference, address: 0000000000000000",
                "Call Trace:",
                "luo: Ready in state [normal]"
            ]
        );
        let mut cut = lines(&[
            "WARNING: kernel/liveupdate/kexec_handover.c:1091 at kho_add_subtree+0x1c5/0x210",
            "Call Trace:",
        ]);
        assert_eq!(kmsg::take_warnings(&mut cut, KHO_VIEW_WARNING), 1);
        assert!(cut.is_empty(), "a cut trace is taken to the end of the log");
    }

    #[test]
    fn any_other_warning_stays_a_splat() {
        let mut log = lines(&[
            "WARNING: kernel/liveupdate/luo_sysfs/luo.rs:205 at luo::init+0x10/0x20, CPU#0: x/1",
            "Call Trace:",
            "---[ end trace 0000000000000000 ]---",
        ]);
        assert_eq!(kmsg::take_warnings(&mut log, KHO_VIEW_WARNING), 0);
        assert_eq!(log.len(), 3);
        assert!(log.iter().any(|l| kmsg::is_splat(&l.text)));
    }
}
