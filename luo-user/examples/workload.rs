//! The live update demo's workload: a counter and a block of "guest memory" that live in a
//! memfd, which `luoctl agent` keeps across the kexec (mainline LUO, `liveupdate=on`).
//!
//! ```text
//! workload [--session NAME] [--memory-mib N] [--socket PATH] [--run-for SECONDS]
//! ```
//!
//! The socket is `$LUO_AGENT_SOCKET` when set, as for `luoctl`, else `/run/luo/agent.sock`.
//!
//! In a kernel that is not `updated`, it creates the memfd: a header page (magic, seed, size,
//! counter) and N MiB whose pages carry a stamp derived from the seed at both ends. It prints
//! the memory's check (an FNV-1a hash of every stamp), hands the memfd to the agent (`keep`),
//! and counts in the header every 50 ms until the kexec stops it.
//!
//! In an `updated` kernel, it claims the memfd back from the agent, checks every page's stamps
//! against the seed in the header, prints the same check and the counter where the old kernel
//! left it, tells the agent the session is restored, and goes on counting for --run-for
//! seconds (default 2), then exits 0. Exit 1 on an error (a page that does not match
//! included), 2 on a wrong command line.
//!
//! The memory is read and written with `pread`/`pwrite`: what matters here is that the memfd's
//! pages stay where they are across the kexec, not how the workload maps them.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use luo_user::State;
use luo_user::keeper::{Client, DEFAULT_SOCKET};
use rustix::fs::MemfdFlags;

#[path = "shared/report.rs"]
mod report;

use report::Report;

const USAGE: &str =
    "usage: workload [--session NAME] [--memory-mib N] [--socket PATH] [--run-for SECONDS]";
const TICK: Duration = Duration::from_millis(50);
const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
const MAGIC: &[u8; 8] = b"LUOWORK1";
/// The token of the memfd in its session.
const TOKEN: u64 = 1;
/// Where the counter lives in the header page.
const COUNTER_AT: u64 = 24;

struct Args {
    session: String,
    memory_mib: u64,
    socket: PathBuf,
    run_for: Duration,
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args {
        session: "workload".to_owned(),
        memory_mib: 256,
        // As luoctl does: the environment's socket, else the standard one.
        socket: std::env::var_os("LUO_AGENT_SOCKET")
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from),
        run_for: Duration::from_secs(2),
    };
    while let Some(arg) = args.next() {
        let flag = arg.to_string_lossy().into_owned();
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let text = value.to_string_lossy();
        let number = || {
            text.parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not '{text}'; {USAGE}"))
        };
        match flag.as_str() {
            "--session" => parsed.session = text.into_owned(),
            "--memory-mib" => {
                let mib = number()?;
                pages_in(mib).ok_or_else(|| {
                    format!(
                        "--memory-mib {mib} is more memory than a file can hold (its length in \
                         bytes must fit in 63 bits); {USAGE}"
                    )
                })?;
                parsed.memory_mib = mib;
            }
            "--socket" => parsed.socket = PathBuf::from(value),
            "--run-for" => parsed.run_for = Duration::from_secs(number()?),
            _ => return Err(format!("unexpected argument '{flag}'; {USAGE}")),
        }
    }
    Ok(parsed)
}

fn say(report: Report<'_>) {
    let mut out = io::stdout().lock();
    // The demo reads these lines; a closed stdout must not stop the workload.
    let _ = writeln!(out, "{report}");
    let _ = out.flush();
}

/// The stamp of page `index` for `seed`: different for every page and every run.
fn stamp(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// FNV-1a's offset basis: the check of no words.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a's state `hash` after the bytes of `word`, little-endian: folding every stamp in page
/// order gives the memory's check without keeping the stamps.
fn fnv_step(hash: u64, word: u64) -> u64 {
    word.to_le_bytes().iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The number of pages of `mib` MiB, if the memory and its header page fit in a file, whose
/// length is a signed 64-bit offset; past that, `mib * MIB` would wrap (or `set_len` fail).
fn pages_in(mib: u64) -> Option<u64> {
    let bytes = mib.checked_mul(MIB)?;
    i64::try_from(bytes.checked_add(PAGE)?).ok()?;
    Some(bytes / PAGE)
}

/// The memory behind the header: N MiB of stamped pages.
struct Memory {
    file: File,
    seed: u64,
    pages: u64,
}

impl Memory {
    fn create(mib: u64) -> io::Result<Self> {
        let pages = pages_in(mib).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{mib} MiB is more than a file can hold"),
            )
        })?;
        let fd = rustix::fs::memfd_create("luo-workload", MemfdFlags::CLOEXEC)?;
        let file = File::from(fd);
        file.set_len(PAGE + pages * PAGE)?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        let memory = Memory { file, seed, pages };
        let mut header = [0u8; 32];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&seed.to_le_bytes());
        header[16..24].copy_from_slice(&mib.to_le_bytes());
        memory.file.write_all_at(&header, 0)?;
        // A MiB at a time: a stamp at each page's first and last eight bytes.
        let mut chunk = vec![0u8; MIB as usize];
        for first in (0..pages).step_by((MIB / PAGE) as usize) {
            for (i, page) in chunk.chunks_mut(PAGE as usize).enumerate() {
                let value = stamp(seed, first + i as u64).to_le_bytes();
                page[..8].copy_from_slice(&value);
                page[PAGE as usize - 8..].copy_from_slice(&value);
            }
            memory.file.write_all_at(&chunk, PAGE + first * PAGE)?;
        }
        Ok(memory)
    }

    fn restore(file: File) -> Result<Self, String> {
        let mut header = [0u8; 32];
        file.read_exact_at(&mut header, 0)
            .map_err(|err| format!("cannot read the header: {err}"))?;
        if &header[..8] != MAGIC {
            return Err("the memfd's header is not the workload's: the memory was lost".into());
        }
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
        let (seed, mib) = (word(8), word(16));
        // The size comes from the memory itself: a corrupt one must not make the check read
        // past the file's end (or overflow) but say what is wrong.
        let length = file
            .metadata()
            .map_err(|err| format!("cannot read the memfd's length: {err}"))?
            .len();
        let pages = pages_in(mib)
            .filter(|pages| PAGE + pages * PAGE <= length)
            .ok_or_else(|| {
                format!(
                    "the memfd's header says {mib} MiB, but the memfd holds {length} bytes: the \
                     memory was damaged"
                )
            })?;
        Ok(Memory { file, seed, pages })
    }

    /// Reads every page back, checks both stamps, and returns the check over them.
    fn check(&self) -> Result<u64, String> {
        let mut chunk = vec![0u8; MIB as usize];
        let mut hash = FNV_BASIS;
        for first in (0..self.pages).step_by((MIB / PAGE) as usize) {
            self.file
                .read_exact_at(&mut chunk, PAGE + first * PAGE)
                .map_err(|err| format!("cannot read page {first}: {err}"))?;
            for (i, page) in chunk.chunks(PAGE as usize).enumerate() {
                let index = first + i as u64;
                let head = u64::from_le_bytes(page[..8].try_into().unwrap_or([0; 8]));
                let tail =
                    u64::from_le_bytes(page[PAGE as usize - 8..].try_into().unwrap_or([0; 8]));
                if head != stamp(self.seed, index) || tail != head {
                    return Err(format!(
                        "page {index} does not hold its stamp ({head:#x}, {tail:#x}): the \
                         memory did not survive"
                    ));
                }
                hash = fnv_step(hash, head);
            }
        }
        Ok(hash)
    }

    fn counter(&self) -> io::Result<u64> {
        let mut word = [0u8; 8];
        self.file.read_exact_at(&mut word, COUNTER_AT)?;
        Ok(u64::from_le_bytes(word))
    }

    fn set_counter(&self, value: u64) -> io::Result<()> {
        self.file.write_all_at(&value.to_le_bytes(), COUNTER_AT)
    }

    fn mib(&self) -> u64 {
        self.pages * PAGE / MIB
    }
}

/// Counts in the memfd every tick, printing the value every second, until `until` (never if
/// `None`).
fn count(memory: &Memory, until: Option<Instant>) -> io::Result<()> {
    let mut value = memory.counter()?;
    let mut ticks = 0u64;
    while until.is_none_or(|end| Instant::now() < end) {
        std::thread::sleep(TICK);
        // The counter comes from the memory, which may come back damaged: no overflow panic.
        value = value.checked_add(1).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the counter in the memory is at its largest value: the memory was damaged",
            )
        })?;
        memory.set_counter(value)?;
        ticks += 1;
        if ticks % 20 == 0 {
            say(Report::CounterAt(value));
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    let state = luo_user::StateFile::open_default()
        .and_then(|file| file.state())
        .map_err(|err| err.to_string())?;
    let client = Client::connect(&args.socket).map_err(|err| err.to_string())?;
    if state == State::Updated {
        let files = client
            .claim(&args.session, &[TOKEN])
            .map_err(|err| err.to_string())?;
        let file = File::from(files.into_iter().next().ok_or("the agent sent no file")?);
        let start = Instant::now();
        let memory = Memory::restore(file)?;
        let check = memory.check()?;
        let value = memory.counter().map_err(|err| err.to_string())?;
        say(Report::Restored {
            mib: memory.mib(),
            session: &args.session,
            check,
            millis: start.elapsed().as_millis(),
            resumes_at: value,
        });
        client
            .restored(&args.session)
            .map_err(|err| err.to_string())?;
        count(&memory, Some(Instant::now() + args.run_for)).map_err(|err| err.to_string())?;
        say(Report::Stopped(
            memory.counter().map_err(|e| e.to_string())?,
        ));
        return Ok(());
    }
    let start = Instant::now();
    let memory =
        Memory::create(args.memory_mib).map_err(|err| format!("cannot create the memfd: {err}"))?;
    let check = memory.check()?;
    say(Report::Stamped {
        mib: memory.mib(),
        millis: start.elapsed().as_millis(),
        check,
    });
    client
        .keep(&args.session, &[(TOKEN, memory.file.as_fd())])
        .map_err(|err| err.to_string())?;
    say(Report::Running {
        session: &args.session,
    });
    // The connection stays open while counting: closing it would let the agent drop the file.
    count(&memory, None).map_err(|err| err.to_string())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("workload: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("workload: error: {message}");
            ExitCode::FAILURE
        }
    }
}

// Run with `cargo test -p luo-user --example workload`: a plain `cargo test` builds the
// examples without their tests.
#[cfg(test)]
mod tests {
    use super::*;

    /// The check as the workload computed it before it folded as it went: FNV-1a over the
    /// collected stamps. The demo compares the check printed before the kexec with the one
    /// printed after, possibly by two builds: the value must not change.
    fn collected_check(seed: u64, pages: u64) -> u64 {
        let stamps: Vec<u64> = (0..pages).map(|index| stamp(seed, index)).collect();
        stamps.iter().fold(0xcbf2_9ce4_8422_2325, |hash, word| {
            word.to_le_bytes().iter().fold(hash, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        })
    }

    /// A memfd that starts with a header saying `mib` MiB, `length` bytes long.
    fn with_header(mib: u64, length: u64) -> File {
        let file = File::from(rustix::fs::memfd_create("test", MemfdFlags::CLOEXEC).unwrap());
        file.set_len(length).unwrap();
        let mut header = [0u8; 32];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&7u64.to_le_bytes());
        header[16..24].copy_from_slice(&mib.to_le_bytes());
        file.write_all_at(&header, 0).unwrap();
        file
    }

    #[test]
    fn the_check_is_fnv_over_every_stamp_and_reads_back_the_same() {
        let memory = Memory::create(2).unwrap();
        assert_eq!(memory.pages, 512);
        assert_eq!(memory.mib(), 2);
        let check = memory.check().unwrap();
        assert_eq!(check, collected_check(memory.seed, 512));
        let restored = Memory::restore(memory.file.try_clone().unwrap()).unwrap();
        assert_eq!(restored.check(), Ok(check));
        // The printed line, which the host parses, is unchanged.
        let line = Report::Stamped {
            mib: restored.mib(),
            millis: 1,
            check: 0xabc,
        }
        .to_string();
        assert_eq!(
            line,
            "workload: 2 MiB stamped in 1 ms, check 0000000000000abc"
        );
    }

    #[test]
    fn a_size_past_a_files_length_is_refused_not_overflowed() {
        assert_eq!(pages_in(256), Some(65_536));
        assert_eq!(pages_in(0), Some(0));
        for mib in [u64::MAX, u64::MAX / MIB + 1, 1 << 43] {
            assert_eq!(pages_in(mib), None, "{mib}");
        }
        assert!(pages_in((1 << 43) - 1).is_some());
        let err = Memory::create(u64::MAX).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let args = ["--memory-mib", "18446744073709551615"].map(OsString::from);
        let err = parse(args.into_iter()).err().unwrap();
        assert!(err.contains("--memory-mib 18446744073709551615"), "{err}");
    }

    #[test]
    fn a_header_that_claims_more_than_the_memfd_holds_is_refused() {
        // A wrapping size, and one past the end of the file: neither is read.
        for (mib, length) in [(u64::MAX, PAGE + MIB), (2, PAGE + MIB)] {
            let err = Memory::restore(with_header(mib, length)).err().unwrap();
            assert!(
                err.contains(&format!("says {mib} MiB")) && err.contains("damaged"),
                "{err}"
            );
        }
        let memory = Memory::restore(with_header(1, PAGE + MIB)).unwrap();
        assert_eq!(memory.pages, 256);
    }

    #[test]
    fn a_counter_at_its_largest_value_stops_the_count_with_an_error() {
        let memory = Memory::create(0).unwrap();
        memory.set_counter(u64::MAX).unwrap();
        let err = count(&memory, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
