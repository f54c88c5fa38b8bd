//! The kernel log: the module's messages, and the splats that fail any test.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;

use luo_sysfs_abi::log::{Kind, Message};

/// Markers of a kernel splat: WARN, BUG, oops, lockdep and sleeping-in-atomic reports.
pub const SPLATS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "general protection fault",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "sleeping function called from invalid context",
    "Call Trace:",
];

/// Markers of a `slub_debug` report, beyond [`SPLATS`]: the guests of the fault tests boot with
/// `slub_debug=FZPU`, and a report of it starts `BUG CACHE (...): WHAT`.
pub const SLUB_REPORTS: &[&str] = &[
    "BUG ",
    "Redzone",
    "Poison overwritten",
    "Object padding",
    "Freepointer",
    "INFO: Slab",
];

/// Whether a kernel log line is a splat or a `slub_debug` report.
pub fn is_splat(text: &str) -> bool {
    SPLATS
        .iter()
        .chain(SLUB_REPORTS)
        .any(|marker| text.contains(marker))
}

/// The whole kernel log.
pub fn dmesg() -> Result<String, String> {
    let out = Command::new("dmesg")
        .output()
        .map_err(|err| format!("cannot run dmesg: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "dmesg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// luo's own lines among `lines` (of `dmesg`, or of the console): mainline's orchestrator and
/// the module loader log with the same prefix `luo: `, but their lines are not luo's.
pub fn luo_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Message<'a>> {
    lines.into_iter().filter_map(Message::find).collect()
}

/// Fails when the log holds a splat, quoting the lines around it.
pub fn assert_clean() -> Result<(), String> {
    assert_clean_except(&[])
}

/// Fails when the log holds a splat other than a WARN whose `WARNING:` line has one of
/// `excused` (see [`take_warnings`]).
pub fn assert_clean_except(excused: &[&str]) -> Result<(), String> {
    let log = dmesg()?;
    // The line the module logs once it is up: a log without it is not the log of this test.
    if !luo_lines(log.lines()).iter().any(|m| m.kind == Kind::Ready) {
        return Err(format!(
            "the kernel log lacks luo's '{}' line: it cannot be the log of this test",
            Kind::Ready.opening()
        ));
    }
    let mut lines: Vec<&str> = log.lines().collect();
    for marker in excused {
        take_warnings(&mut lines, marker);
    }
    assert_no_splat(&lines.join("\n"))
}

/// Fails when `log` holds a splat, quoting the lines around it.
pub fn assert_no_splat(log: &str) -> Result<(), String> {
    let lines: Vec<&str> = log.lines().collect();
    match lines
        .iter()
        .position(|line| SPLATS.iter().any(|s| line.contains(s)))
    {
        None => Ok(()),
        Some(at) => Err(format!(
            "the kernel log has a splat:\n{}",
            lines[at.saturating_sub(5)..lines.len().min(at + 40)].join("\n")
        )),
    }
}

/// Takes each WARN whose `WARNING:` line contains `marker` out of `lines`, from that line to
/// the end of its trace (`---[ end trace`); returns how many. A test that expects one
/// particular warning takes it out, so that the splat check still refuses any other. A trace
/// whose end is missing ends where the next splat starts (a line of [`is_splat`]'s other than
/// a `Call Trace:`), which stays; or with the log.
pub fn take_warnings<L: AsRef<str>>(lines: &mut Vec<L>, marker: &str) -> usize {
    let mut taken = 0;
    while let Some(start) = lines.iter().position(|l| {
        let text = l.as_ref();
        text.contains("WARNING:") && text.contains(marker)
    }) {
        let end = (start + 1..lines.len())
            .find_map(|at| {
                let text = lines[at].as_ref();
                if text.contains("---[ end trace") {
                    Some(at + 1)
                } else if is_splat(text) && !text.contains("Call Trace:") {
                    Some(at)
                } else {
                    None
                }
            })
            .unwrap_or(lines.len());
        lines.drain(start..end);
        taken += 1;
    }
    taken
}

/// How many WARNs the kernel has printed since boot: a WARN whose lines the log lost (records
/// overwritten before they were read) still counts here.
pub fn warn_count() -> Result<u64, String> {
    const WARN_COUNT: &str = "/sys/kernel/warn_count";
    let text = std::fs::read_to_string(WARN_COUNT).map_err(|err| format!("{WARN_COUNT}: {err}"))?;
    text.trim()
        .parse()
        .map_err(|err| format!("{WARN_COUNT} '{}': {err}", text.trim()))
}

/// The number of luo's error lines (`pr_err` and worse) among `lines`.
pub fn luo_errors(lines: &[Line]) -> usize {
    lines
        .iter()
        .filter(|l| l.level <= 3 && l.luo().is_some())
        .count()
}

/// A record of the kernel log: its first line and its level.
pub struct Line {
    /// The syslog level, 0 (emergency) to 7 (debug).
    pub level: u32,
    /// Its first line.
    pub text: String,
}

impl Line {
    /// Which of luo's lines this is, if it is luo's (mainline's orchestrator's are not).
    pub fn luo(&self) -> Option<Kind> {
        Message::find(&self.text).map(|message| message.kind)
    }
}

impl AsRef<str> for Line {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// The records' text, one a line.
pub fn join_lines(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/dev/kmsg`, read without blocking from the end of the log onwards.
pub struct Kmsg(File);

impl Kmsg {
    /// Opens the log, positioned at its end: [`Kmsg::take`] returns what comes after.
    pub fn open() -> Result<Self, String> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|err| format!("/dev/kmsg: {err}"))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|err| format!("seeking /dev/kmsg: {err}"))?;
        Ok(Self(file))
    }

    /// The records logged since the last call.
    pub fn take(&mut self) -> Result<Vec<Line>, String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(len) => {
                    let record = String::from_utf8_lossy(&buf[..len]);
                    let Some((prefix, text)) = record.split_once(';') else {
                        continue;
                    };
                    let level = prefix
                        .split(',')
                        .next()
                        .and_then(|p| p.parse::<u32>().ok())
                        .map_or(7, |p| p & 7);
                    let text = text.lines().next().unwrap_or_default().to_owned();
                    lines.push(Line { level, text });
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                // Records overwritten before they were read: go on from the oldest left.
                Err(err) if err.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(err) => return Err(format!("reading /dev/kmsg: {err}")),
            }
        }
        Ok(lines)
    }
}
