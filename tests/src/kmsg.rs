//! The kernel log: the module's messages, and the splats that fail any test.

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
    let log = dmesg()?;
    // The line the module logs once it is up: a log without it is not the log of this test.
    if !luo_lines(log.lines()).iter().any(|m| m.kind == Kind::Ready) {
        return Err(format!(
            "the kernel log lacks luo's '{}' line: it cannot be the log of this test",
            Kind::Ready.opening()
        ));
    }
    assert_no_splat(&log)
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
