//! What one wake costs a watcher in its own thread, with the scheduler taken out: the driver's
//! thread makes a transition, then at once does a watcher's work for it (the notification is
//! already pending, so `poll` returns without sleeping), and times that work alone, from the
//! ioctl's return to holding the new state.
//!
//! The end-to-end latency includes the wake-up and the scheduling of the watcher, whose
//! spread under TCG is hundreds of microseconds; this isolates the part a watcher's own code
//! decides (its system calls, parsing, clock reads, bookkeeping), so that a difference of a
//! microsecond between the library and the floor's loop shows. The floor's loop is measured in
//! its Rust form ([`super::watchers::Variant::Raw`]: the same `poll`, `pread` and
//! `clock_gettime` calls as the C program).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use luo_state::State;
use luo_sysfs_abi::parse_state;
use luo_sysfs_abi::path::STATE_PATH;
use luo_user::{KernfsFile, Watcher};

use super::latency::Driver;
use super::{Summary, monotonic_ns};

/// Measured wakes per layer.
pub const WAKES: usize = 1_200;
/// Wakes per layer before the measured ones, not counted.
const WARMUP: usize = 100;

/// The per-wake work of each layer, in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct WakeWork {
    /// `poll` + `pread` + byte comparison + `clock_gettime`, with libc.
    pub raw: Summary,
    /// `KernfsFile::wait` + `read_into` + `parse_state` + `clock_gettime`.
    pub kernfs: Summary,
    /// `Watcher::next_change` + `clock_gettime`.
    pub library: Summary,
    /// Heap allocations during the timed library wakes, per wake (counted by
    /// [`super::alloc::Counting`] when the program installs it).
    pub library_allocations: f64,
}

/// Measures each layer, [`WAKES`] wakes each, the three taking turns.
pub fn measure(driver: &mut Driver) -> Result<WakeWork, String> {
    let raw_file = File::open(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    let kernfs_file = KernfsFile::open(STATE_PATH).map_err(|err| err.to_string())?;
    let mut watcher = Watcher::open_default().map_err(|err| err.to_string())?;
    let mut page = vec![0u8; 4096];
    let (mut raw, mut kernfs, mut library) = (
        Vec::with_capacity(WAKES),
        Vec::with_capacity(WAKES),
        Vec::with_capacity(WAKES),
    );
    let mut library_allocations = 0;
    // Every reader must have seen the current state before the first timed wake: read each
    // once (the watcher did in `open`).
    let mut small = [0u8; 64];
    raw_file
        .read_at(&mut small, 0)
        .map_err(|err| format!("{STATE_PATH}: {err}"))?;
    kernfs_file
        .read_into(&mut page)
        .map_err(|e| e.to_string())?;

    // The timed layer changes at every transition, in a random order within each round of
    // three, so that the host's drift and any periodic work in the guest fall on all alike; the
    // first rounds are a warm-up.
    let mut order = [0usize, 1, 2];
    for round in 0..WARMUP + WAKES {
        let counted = round >= WARMUP;
        driver.rng().shuffle(&mut order);
        for &layer in &order {
            // Each transition is seen by all three readers; only one is timed, the other two
            // catch up afterwards without a clock so that they are armed for the next one.
            let to = driver.transition()?;
            let allocs = super::alloc::count();
            let t0 = monotonic_ns();
            let got = match layer {
                0 => raw_wake(&raw_file, &mut small)?,
                1 => kernfs_wake(&kernfs_file, &mut page)?,
                _ => library_wake(&mut watcher)?,
            };
            let t1 = monotonic_ns();
            if layer == 2 && counted {
                library_allocations += super::alloc::count() - allocs;
            }
            if got != to {
                return Err(format!("a wake read {got}, expected {to}"));
            }
            if layer != 0 {
                raw_wake(&raw_file, &mut small)?;
            }
            if layer != 1 {
                kernfs_wake(&kernfs_file, &mut page)?;
            }
            if layer != 2 {
                library_wake(&mut watcher)?;
            }
            if counted {
                [&mut raw, &mut kernfs, &mut library][layer].push(t1 - t0);
            }
        }
    }
    driver.settle()?;
    Ok(WakeWork {
        raw: Summary::of(&raw),
        kernfs: Summary::of(&kernfs),
        library: Summary::of(&library),
        library_allocations: library_allocations as f64 / library.len().max(1) as f64,
    })
}

/// The floor's loop for one wake, in Rust with libc: `poll`, `pread`, the newline cut, a
/// comparison, a clock read (the report's).
fn raw_wake(file: &File, buf: &mut [u8; 64]) -> Result<State, String> {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the call's duration, its fd open (`file`).
    if unsafe { libc::poll(&mut pfd, 1, -1) } != 1 {
        return Err("poll did not report the pending change".to_owned());
    }
    let mut len = file
        .read_at(buf, 0)
        .map_err(|err| format!("{STATE_PATH}: {err}"))?;
    while len > 0 && buf[len - 1] == b'\n' {
        len -= 1;
    }
    // The C floor compares with the last word; the state it names is what the caller checks.
    let state = State::from_word(&buf[..len]).ok_or("not a state word")?;
    std::hint::black_box(monotonic_ns());
    Ok(state)
}

/// The library's I/O layer for one wake: `KernfsFile::wait`, `read_into`, the strict parser.
fn kernfs_wake(file: &KernfsFile, page: &mut [u8]) -> Result<State, String> {
    if !file.wait(None).map_err(|err| err.to_string())? {
        return Err("wait did not report the pending change".to_owned());
    }
    let len = file.read_into(page).map_err(|err| err.to_string())?;
    let state = parse_state(&page[..len]).map_err(|err| err.to_string())?;
    std::hint::black_box(monotonic_ns());
    Ok(state)
}

/// The library for one wake: `Watcher::next_change`.
fn library_wake(watcher: &mut Watcher) -> Result<State, String> {
    let change = watcher
        .next_change(None)
        .map_err(|err| err.to_string())?
        .ok_or("next_change without a timeout returned nothing")?;
    std::hint::black_box(monotonic_ns());
    Ok(change.state)
}
