//! The cost of one read of the state: `StateFile::state()` (one `pread` on a descriptor kept
//! open, parsed) against opening, reading, parsing and closing the path each time; and the
//! cost of the clock reads a watcher makes per change, which depends on the guest's clock
//! source (a read through the vDSO with `tsc`, a system call with `hpet` or `acpi_pm`).

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::time::{Instant, SystemTime};

use luo_sysfs_abi::parse_state;
use luo_sysfs_abi::path::STATE_PATH;
use luo_user::StateFile;

use super::monotonic_ns;

/// Calls timed for each way.
pub const CALLS: u32 = 10_000;

/// Nanoseconds per call of each way.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    /// `StateFile::state()`.
    pub state_fn: u64,
    /// `open` + `read` + parse + `close` of the path.
    pub open_read_close: u64,
}

/// Times [`CALLS`] calls of each way (after a short warm-up).
pub fn measure() -> Result<Cost, String> {
    let file = StateFile::open_default().map_err(|err| err.to_string())?;
    for _ in 0..100 {
        black_box(file.state().map_err(|err| err.to_string())?);
        black_box(open_read_close()?);
    }
    let start = monotonic_ns();
    for _ in 0..CALLS {
        black_box(file.state().map_err(|err| err.to_string())?);
    }
    let state_fn = (monotonic_ns() - start) / u64::from(CALLS);
    let start = monotonic_ns();
    for _ in 0..CALLS {
        black_box(open_read_close()?);
    }
    let open_read_close = (monotonic_ns() - start) / u64::from(CALLS);
    Ok(Cost {
        state_fn,
        open_read_close,
    })
}

/// What a program does without the library: open the path, read it, parse, close.
fn open_read_close() -> Result<luo_state::State, String> {
    let mut buf = [0u8; 64];
    let mut file = File::open(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    let len = file
        .read(&mut buf)
        .map_err(|err| format!("{STATE_PATH}: {err}"))?;
    parse_state(&buf[..len]).map_err(|err| format!("{STATE_PATH}: {err}"))
}

/// Nanoseconds per call of each clock read.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// `Instant::now()` (`CLOCK_MONOTONIC`).
    pub instant: u64,
    /// `SystemTime::now()` (`CLOCK_REALTIME`).
    pub system_time: u64,
    /// `clock_gettime(CLOCK_MONOTONIC)` through libc, as the benchmark's watchers report.
    pub monotonic: u64,
}

/// Times [`CALLS`] calls of each clock read.
pub fn clocks() -> Clocks {
    fn per_call(mut f: impl FnMut()) -> u64 {
        for _ in 0..100 {
            f();
        }
        let start = monotonic_ns();
        for _ in 0..CALLS {
            f();
        }
        (monotonic_ns() - start) / u64::from(CALLS)
    }
    Clocks {
        instant: per_call(|| {
            black_box(Instant::now());
        }),
        system_time: per_call(|| {
            black_box(SystemTime::now());
        }),
        monotonic: per_call(|| {
            black_box(monotonic_ns());
        }),
    }
}

/// The guest's clock source, from sysfs.
pub fn clock_source() -> String {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned())
}
