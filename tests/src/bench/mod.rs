//! The benchmarks of `cargo xtask bench`, run in one guest by `luo-bench`.
//!
//! - [`latency`]: from a transition's ioctl to the watchers' reports, with 1, 16 and 128
//!   watcher processes, for the library and for a minimal C loop of `poll` + `pread` (the
//!   floor), both reporting the same way ([`record`]); the Rust layers between them
//!   ([`watchers`]); re-reading every 100 ms; and the ioctl's own cost as watchers are added;
//! - [`wake_work`]: the work of one wake in each of those layers, without the scheduler;
//! - [`cost`]: one `StateFile::state()` against open + read + close, and the clock reads a
//!   watcher makes;
//! - [`idle`]: the system calls a watcher makes while nothing happens.
//!
//! Every line of the report is `bench: KEY VALUE`, readable and parsable alike.

pub mod alloc;
pub mod cost;
pub mod idle;
pub mod latency;
pub mod procfs;
pub mod record;
pub mod wake_work;
pub mod watchers;

use std::fmt::Display;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock every process of the system shares (so a time
/// taken here compares with one the C floor prints).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call's duration; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}

/// A small xorshift generator for the gaps between transitions (no crate needed, not secure).
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn from_clock() -> Self {
        Rng(monotonic_ns() | 1)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if hi <= lo {
            lo
        } else {
            lo + self.0 % (hi - lo)
        }
    }

    /// Shuffles `items` (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Percentiles of a set of latencies.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median, in nanoseconds.
    pub p50: u64,
    /// 99th percentile (nearest rank), in nanoseconds.
    pub p99: u64,
    /// Largest sample, in nanoseconds.
    pub max: u64,
    /// Smallest sample, in nanoseconds.
    pub min: u64,
}

impl Summary {
    /// Summarises `samples` (nanoseconds); all zero when empty.
    pub fn of(samples: &[u64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Summary {
            n: sorted.len(),
            p50: percentile(&sorted, 50),
            p99: percentile(&sorted, 99),
            max: sorted.last().copied().unwrap_or(0),
            min: sorted.first().copied().unwrap_or(0),
        }
    }
}

/// The nearest-rank percentile `p` of sorted samples.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Microseconds with one decimal, from nanoseconds.
pub fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// Prints one report line, `bench: KEY VALUE`, the key padded so the report reads as a table.
pub fn line(key: &str, value: impl Display) {
    println!("bench: {key:<34} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<u64> = (1..=200).rev().collect();
        let s = Summary::of(&samples);
        assert_eq!((s.n, s.p50, s.p99, s.max), (200, 100, 198, 200));
        let one = Summary::of(&[7]);
        assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
        assert_eq!(Summary::of(&[]).p50, 0);
    }

    #[test]
    fn shuffles_keep_the_items() {
        let mut rng = Rng::from_clock();
        let mut items: Vec<u32> = (0..10).collect();
        rng.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::from_clock();
        for _ in 0..1000 {
            let x = rng.range(10, 20);
            assert!((10..20).contains(&x));
        }
        assert_eq!(rng.range(5, 5), 5);
    }
}
