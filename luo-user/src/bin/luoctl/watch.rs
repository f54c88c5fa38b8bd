//! `luoctl watch`: one flushed line per observed change, and a command run per change.

use std::io::{self, Write};
use std::process::Command;

use luo_user::{Change, StateFile, Wakeup};

use crate::Failure;
use crate::cli::WatchArgs;

/// Watches `file` until `args.count` changes, the idle timeout, or an error.
pub fn run(file: StateFile, args: &WatchArgs) -> Result<(), Failure> {
    let path = file.path().to_path_buf();
    let wakeup = match file.wakeup() {
        Wakeup::Priority => "notified by the kernel".to_string(),
        Wakeup::Interval(every) => format!(
            "not in sysfs, re-read every {}",
            humantime::format_duration(every)
        ),
    };
    let mut watcher = file.watch()?;
    eprintln!(
        "luoctl: watching {} (state: {}; {wakeup})",
        path.display(),
        watcher.current()
    );
    let idle = args.idle_timeout.map(Into::into);
    let mut stdout = io::stdout().lock();
    let mut seen = 0u64;
    while args.count.is_none_or(|count| seen < count) {
        let Some(change) = watcher.next_change(idle)? else {
            return Err(Failure::TimedOut(format!(
                "no change of {} within {} (state: {})",
                path.display(),
                args.idle_timeout.map(|d| d.to_string()).unwrap_or_default(),
                watcher.current()
            )));
        };
        print_change(&mut stdout, &change, args.json)?;
        if let Some((program, rest)) = args.exec.split_first() {
            run_command(program, rest, &change);
        }
        seen += 1;
    }
    Ok(())
}

fn print_change(out: &mut impl Write, change: &Change, json: bool) -> io::Result<()> {
    let time = humantime::format_rfc3339_micros(change.time);
    if json {
        // Every field is a fixed word, a number or an RFC 3339 time: nothing to escape.
        writeln!(
            out,
            r#"{{"time":"{time}","seq":{},"prev":"{}","state":"{}"}}"#,
            change.seq, change.prev, change.state
        )?;
    } else {
        writeln!(out, "{time} {} -> {}", change.prev, change.state)?;
    }
    out.flush()
}

/// Runs the `--exec` command for one change; a failure is reported, not fatal.
fn run_command(program: &std::ffi::OsStr, args: &[std::ffi::OsString], change: &Change) {
    let shown = program.to_string_lossy();
    let status = Command::new(program)
        .args(args)
        .env("LUO_STATE", change.state.word())
        .env("LUO_PREV_STATE", change.prev.word())
        .env("LUO_SEQ", change.seq.to_string())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!(
            "luoctl: command '{shown}' failed ({status}) after change {}; still watching",
            change.seq
        ),
        Err(err) => eprintln!("luoctl: cannot run '{shown}': {err}; check --exec (still watching)"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use luo_user::State;

    use super::*;

    fn change() -> Change {
        Change {
            state: State::Prepared,
            prev: State::Normal,
            seq: 3,
            at: Instant::now(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    #[test]
    fn a_text_line_has_the_utc_time_and_both_states() {
        let mut out = Vec::new();
        print_change(&mut out, &change(), false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2027-01-15T08:00:00.000000Z normal -> prepared\n"
        );
    }

    #[test]
    fn a_json_line_has_time_seq_prev_and_state() {
        let mut out = Vec::new();
        print_change(&mut out, &change(), true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"2027-01-15T08:00:00.000000Z\",\"seq\":3,\"prev\":\"normal\",\"state\":\"prepared\"}\n"
        );
    }
}
