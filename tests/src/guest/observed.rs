//! The observer flavour's checks, on the in-tree kernel booted with `liveupdate=on`: what a
//! watcher recorded (`luoctl watch --initial --json`) is legal and in order, and a memfd's
//! memory survives a live update in one of mainline's sessions.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

use luo_state::State;
use luo_state::observed::observed_change_allowed;
use luo_user::session::{Session, Sessions};

use crate::{Outcome, ensure};

/// One record of `luoctl watch --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watched {
    /// The state before; none for the initial one.
    prev: Option<State>,
    state: State,
    /// The transition count read with the state.
    transitions: u64,
    /// The changes since the record before that this one does not show; none for the first.
    missed: Option<u64>,
}

/// One record of `luoctl watch --json`; its transition count is required (the observer has
/// the counter).
fn parse_record(line: &str) -> Result<Watched, String> {
    let number = |name: &str| -> Option<Result<u64, String>> {
        let start = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(
            digits
                .parse()
                .map_err(|err| format!("{name} in {line}: {err}")),
        )
    };
    let field = |name: &str| -> Option<&str> {
        let start = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        let rest = &line[start..];
        if rest.starts_with("null") {
            return None;
        }
        let rest = rest.strip_prefix('"')?;
        Some(&rest[..rest.find('"')?])
    };
    let word = |w: &str| {
        State::from_word(w.as_bytes()).ok_or_else(|| format!("'{w}' is not a state in: {line}"))
    };
    let state = word(field("state").ok_or_else(|| format!("no state in: {line}"))?)?;
    let prev = field("prev").map(word).transpose()?;
    let transitions =
        number("transitions").ok_or_else(|| format!("no transitions in: {line}"))??;
    let missed = number("missed").transpose()?;
    Ok(Watched {
        prev,
        state,
        transitions,
        missed,
    })
}

/// Checks the records a watcher wrote to `file` in one boot: the first is the state found at
/// start, each change is allowed by the observer's table and starts where the one before
/// ended, `order` appears among the states seen in that order (changes coalesce, so states
/// between them may be missing), and the last state is one of `last`.
///
/// And the transition counter: each record's count rose from the one before by the change it
/// shows (one, unless it is a record from a state to itself) plus the changes it says it
/// missed, so the records account for every change; with `count`, the last record's count is
/// it.
pub fn check_watch(file: &Path, order: &[State], last: &[State], count: Option<u64>) -> Outcome {
    let text = std::fs::read_to_string(file).map_err(|err| format!("{}: {err}", file.display()))?;
    let records = text
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(parse_record)
        .collect::<Result<Vec<_>, _>>()?;
    let Some((initial, changes)) = records
        .split_first()
        .filter(|(initial, _)| initial.prev.is_none())
    else {
        return Err(format!(
            "{}: the first record must be the initial state; got:\n{text}",
            file.display()
        ));
    };
    let first = initial.state;
    let mut seen = vec![first];
    let (mut counted, mut missed_total) = (initial.transitions, 0);
    for record in changes {
        let (prev, state) = (record.prev, &record.state);
        let prev = prev.ok_or_else(|| format!("a second initial record in:\n{text}"))?;
        let at = *seen.last().unwrap_or(&first);
        ensure!(
            prev == at,
            "a change from '{prev}' after the state '{at}':\n{text}"
        );
        let missed = record
            .missed
            .ok_or_else(|| format!("a change without missed in:\n{text}"))?;
        ensure!(
            record.transitions == counted + missed + u64::from(prev != *state),
            "the count went from {counted} to {} for '{prev}' -> '{state}' with {missed} \
             missed:\n{text}",
            record.transitions
        );
        counted = record.transitions;
        missed_total += missed;
        // A record from a state to itself shows changes that came and went (at least two);
        // the table judges only the changes a watcher saw.
        if prev == *state {
            ensure!(
                missed >= 2,
                "'{prev}' -> '{state}' with {missed} missed:\n{text}"
            );
        } else {
            ensure!(
                observed_change_allowed(prev, *state),
                "the watcher saw '{prev}' -> '{state}', which the observer's table does not allow:\n{text}"
            );
        }
        seen.push(*state);
    }
    if let Some(count) = count {
        ensure!(
            counted == count,
            "the watcher's last count is {counted}, the kernel's is {count}:\n{text}"
        );
    }
    let mut wanted = order.iter().peekable();
    for state in &seen {
        if wanted.peek() == Some(&state) {
            wanted.next();
        }
    }
    ensure!(
        wanted.peek().is_none(),
        "the watcher saw {seen:?}, which lacks {order:?} in that order"
    );
    let end = *seen.last().unwrap_or(&first);
    ensure!(
        last.contains(&end),
        "the watcher ended in '{end}', expected one of {last:?}"
    );
    println!(
        "watcher: {} (transitions {} to {counted}, {missed_total} missed and counted)",
        seen.iter()
            .map(|s| s.word())
            .collect::<Vec<_>>()
            .join(" -> "),
        initial.transitions
    );
    Ok(())
}

/// The page size the stamps are laid out by.
const PAGE: usize = 4096;

/// The stamp of page `index`: its index and a seed, so a page that moved or came from another
/// run fails the check.
fn stamp(index: u64, seed: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&index.to_le_bytes());
    out[8..].copy_from_slice(&(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    out
}

/// A memfd of `mib` MiB with a stamp at the start of each page (the rest stays zero, which the
/// check reads too, a page at a time in large reads).
fn make_memfd(mib: u64, seed: u64) -> Result<File, String> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new descriptor
    // or -1.
    let fd = unsafe { libc::memfd_create(c"luo-memory".as_ptr(), libc::MFD_CLOEXEC) };
    ensure!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let pages = mib * 1024 * 1024 / PAGE as u64;
    file.set_len(pages * PAGE as u64)
        .map_err(|err| format!("memfd: set_len: {err}"))?;
    let mut chunk = vec![0u8; 256 * PAGE];
    let per_chunk = (chunk.len() / PAGE) as u64;
    let mut page = 0;
    while page < pages {
        let n = per_chunk.min(pages - page);
        for i in 0..n {
            let at = i as usize * PAGE;
            chunk[at..at + 16].copy_from_slice(&stamp(page + i, seed));
        }
        file.write_all(&chunk[..n as usize * PAGE])
            .map_err(|err| format!("memfd: write: {err}"))?;
        page += n;
    }
    Ok(file)
}

/// Checks every page of `file` against its stamp: `mib` MiB, stamped with `seed`.
fn verify_memfd(file: &mut File, mib: u64, seed: u64) -> Outcome {
    let pages = mib * 1024 * 1024 / PAGE as u64;
    let len = file
        .metadata()
        .map_err(|err| format!("memfd: {err}"))?
        .len();
    ensure!(
        len == pages * PAGE as u64,
        "the memfd holds {len} bytes, expected {}",
        pages * PAGE as u64
    );
    file.seek(SeekFrom::Start(0))
        .map_err(|err| format!("memfd: seek: {err}"))?;
    let mut chunk = vec![0u8; 256 * PAGE];
    let per_chunk = (chunk.len() / PAGE) as u64;
    let zero = [0u8; PAGE - 16];
    let mut page = 0;
    while page < pages {
        let n = per_chunk.min(pages - page);
        let bytes = &mut chunk[..n as usize * PAGE];
        file.read_exact(bytes)
            .map_err(|err| format!("memfd: read: {err}"))?;
        for i in 0..n {
            let at = i as usize * PAGE;
            ensure!(
                bytes[at..at + 16] == stamp(page + i, seed) && bytes[at + 16..at + PAGE] == zero,
                "page {} of the memfd does not hold its stamp",
                page + i
            );
        }
        page += n;
    }
    Ok(())
}

/// Before the kexec: creates session `name`, preserves a stamped memfd of `mib` MiB in it as
/// `token`, and keeps the session open in a child that lives until the kexec (a session lives
/// while its fd is open). Returns once the child holds it.
pub fn preserve(name: &str, token: u64, mib: u64, seed: u64) -> Outcome {
    let memfd = make_memfd(mib, seed)?;
    let session: Session = {
        let sessions = Sessions::open().map_err(|err| err.to_string())?;
        sessions.create(name).map_err(|err| err.to_string())?
        // The device closes here: the kernel admits one opener, and the session outlives it.
    };
    session
        .preserve(memfd.as_fd(), token)
        .map_err(|err| err.to_string())?;
    println!("preserved: session '{name}', token {token}, {mib} MiB stamped with seed {seed}");
    hold_until_kexec(session)
}

/// Forks a child that keeps `session` open until the kexec ends it or it is killed, prints
/// `holder: PID`, and returns in the parent.
fn hold_until_kexec(session: Session) -> Outcome {
    std::io::stdout()
        .flush()
        .map_err(|err| format!("stdout: {err}"))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|err| format!("/dev/null: {err}"))?;
    // SAFETY: The process is single-threaded here (the tests' binary starts no thread before
    // this), so the child may run any code after fork.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            use std::os::fd::AsRawFd;
            // The child lets go of the script's pipes (a `$(...)` waits for them to close) and
            // of its session, so that nothing that ends the script ends it.
            for target in 0..3 {
                // SAFETY: dup2 onto the standard descriptors, from an open descriptor.
                unsafe { libc::dup2(null.as_raw_fd(), target) };
            }
            // SAFETY: setsid has no preconditions.
            unsafe { libc::setsid() };
            let _held = session;
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        pid => {
            println!("holder: {pid}");
            Ok(())
        }
    }
}

/// Creates session `name` with no file in it and holds it until the kexec: empty sessions
/// count for nothing.
pub fn hold_empty(name: &str) -> Outcome {
    let session = Sessions::open()
        .and_then(|sessions| sessions.create(name))
        .map_err(|err| err.to_string())?;
    hold_until_kexec(session)
}

/// After the kexec: retrieves session `name`, checks the memfd of `token` page by page, and
/// finishes the session (closing it then leaves nothing behind).
pub fn verify(name: &str, token: u64, mib: u64, seed: u64) -> Outcome {
    let session = Sessions::open()
        .and_then(|sessions| sessions.retrieve(name))
        .map_err(|err| err.to_string())?;
    let kernel_name = session.kernel_name().map_err(|err| err.to_string())?;
    ensure!(
        kernel_name == name,
        "GET_NAME says '{kernel_name}', expected '{name}'"
    );
    let mut memfd = File::from(session.retrieve_fd(token).map_err(|err| err.to_string())?);
    verify_memfd(&mut memfd, mib, seed)?;
    println!("verified: session '{name}', token {token}, every page of {mib} MiB holds its stamp");
    session.finish().map_err(|err| err.to_string())
}

/// After the kexec, for the test of an unfinished session: retrieves session `name`, takes its
/// file, and holds the session open without finishing it until the kexec or a kill.
pub fn retrieve_and_hold(name: &str, token: u64) -> Outcome {
    let session = Sessions::open()
        .and_then(|sessions| sessions.retrieve(name))
        .map_err(|err| err.to_string())?;
    let _memfd = session.retrieve_fd(token).map_err(|err| err.to_string())?;
    println!("retrieved: session '{name}', left unfinished");
    hold_until_kexec(session)
}

/// The session binding's errors against the real kernel, in a boot with mainline's
/// orchestrator on: each failure is the variant that says what to do.
pub fn session_errors() -> Outcome {
    use luo_user::session::SessionError;
    let sessions = Sessions::open().map_err(|err| err.to_string())?;
    // The device admits one opener: a second one is told who holds it.
    match Sessions::open() {
        Err(SessionError::Busy { holder, .. }) => ensure!(
            holder.contains(&std::process::id().to_string()),
            "the busy error names '{holder}', not this process"
        ),
        other => return Err(format!("a second open gave {other:?}, expected Busy")),
    }
    let first = sessions.create("errors").map_err(|err| err.to_string())?;
    ensure!(
        matches!(
            sessions.create("errors"),
            Err(SessionError::NameTaken { .. })
        ),
        "creating a taken name is not NameTaken"
    );
    ensure!(
        matches!(
            sessions.create(&"n".repeat(64)),
            Err(SessionError::BadName { .. })
        ),
        "a 64-byte name is not BadName"
    );
    ensure!(
        matches!(
            sessions.retrieve("no-such-session"),
            Err(SessionError::NoSuchSession { .. })
        ),
        "retrieving an unknown name is not NoSuchSession"
    );
    let null = File::open("/dev/null").map_err(|err| format!("/dev/null: {err}"))?;
    match first.preserve(&null, 1) {
        Err(err @ SessionError::Session { .. }) => ensure!(
            err.to_string().contains("memfds only"),
            "preserving /dev/null says: {err}"
        ),
        other => return Err(format!("preserving /dev/null gave {other:?}")),
    }
    let name = first.kernel_name().map_err(|err| err.to_string())?;
    ensure!(name == "errors", "GET_NAME says '{name}'");
    println!(
        "session errors: busy names its holder, taken, bad and unknown names, a file that cannot be preserved"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses_into_prev_state_and_counts() {
        let line = r#"{"time":"t","seq":3,"prev":"normal","state":"prepared","transitions":12,"missed":2}"#;
        assert_eq!(
            parse_record(line),
            Ok(Watched {
                prev: Some(State::Normal),
                state: State::Prepared,
                transitions: 12,
                missed: Some(2)
            })
        );
        let first = r#"{"time":"t","seq":0,"prev":null,"state":"updated","transitions":0}"#;
        assert_eq!(
            parse_record(first),
            Ok(Watched {
                prev: None,
                state: State::Updated,
                transitions: 0,
                missed: None
            })
        );
        let old = r#"{"time":"t","seq":0,"prev":null,"state":"updated"}"#;
        assert!(parse_record(old).is_err());
    }

    /// A file of watch records, removed on drop.
    struct WatchFile(std::path::PathBuf);

    impl Drop for WatchFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn watch_file(lines: &[&str]) -> (WatchFile, std::path::PathBuf) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "luo-check-watch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, lines.join("\n")).unwrap();
        (WatchFile(path.clone()), path)
    }

    #[test]
    fn check_watch_accounts_for_every_change() {
        let (_dir, good) = watch_file(&[
            r#"{"seq":0,"prev":null,"state":"normal","transitions":0}"#,
            r#"{"seq":1,"prev":"normal","state":"prepared","transitions":3,"missed":2}"#,
            r#"{"seq":2,"prev":"prepared","state":"prepared","transitions":5,"missed":2}"#,
            r#"{"seq":3,"prev":"prepared","state":"normal","transitions":6,"missed":0}"#,
        ]);
        let normal = [State::Normal];
        check_watch(&good, &[State::Prepared], &normal, Some(6)).unwrap();
        assert!(check_watch(&good, &[State::Prepared], &normal, Some(7)).is_err());
        let (_dir, bad) = watch_file(&[
            r#"{"seq":0,"prev":null,"state":"normal","transitions":0}"#,
            r#"{"seq":1,"prev":"normal","state":"prepared","transitions":3,"missed":0}"#,
        ]);
        let err = check_watch(&bad, &[], &[State::Prepared], None).unwrap_err();
        assert!(err.contains("the count went from 0 to 3"), "{err}");
    }

    #[test]
    fn a_stamp_differs_by_page_and_by_seed() {
        assert_ne!(stamp(1, 7), stamp(2, 7));
        assert_ne!(stamp(1, 7), stamp(1, 8));
    }
}
