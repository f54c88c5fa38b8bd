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
            "--memory-mib" => parsed.memory_mib = number()?,
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

/// FNV-1a over `words`.
fn fnv(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(0xcbf2_9ce4_8422_2325, |hash, word| {
        word.to_le_bytes().iter().fold(hash, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    })
}

/// The memory behind the header: N MiB of stamped pages.
struct Memory {
    file: File,
    seed: u64,
    pages: u64,
}

impl Memory {
    fn create(mib: u64) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create("luo-workload", MemfdFlags::CLOEXEC)?;
        let file = File::from(fd);
        let pages = mib * MIB / PAGE;
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
        Ok(Memory {
            file,
            seed,
            pages: mib * MIB / PAGE,
        })
    }

    /// Reads every page back, checks both stamps, and returns the check over them.
    fn check(&self) -> Result<u64, String> {
        let mut chunk = vec![0u8; MIB as usize];
        let mut stamps = Vec::with_capacity(self.pages as usize);
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
                stamps.push(head);
            }
        }
        Ok(fnv(stamps.into_iter()))
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
        value += 1;
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
