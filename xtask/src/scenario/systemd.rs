//! The live update under Debian's own systemd as PID 1, with the unit of `contrib/systemd/`
//! enabled, on the in-tree kernel (luo built in; one guest, two boots per test):
//! `cargo xtask test systemd/standalone`, luo's own v3 flavour, and `systemd/observer`, luo
//! beside mainline LUO (`liveupdate=on`), where the agent keeps a workload's memfd.
//!
//! The guest boots `luo-guest-init`'s systemd mode: an overlay with a tmpfs upper layer over
//! the host's root, the host's units cut, and `systemd.unit=luo-guest.target`. The script runs
//! twice per boot, after `systemd-lib.sh`. Before systemd (`LUO_GUEST_PHASE=setup`) it installs
//! what a package and an administrator would: `luoctl` in `/usr/bin`, the unit, enabled with
//! `systemctl enable` (in the observer test with its drop-in `observer.conf`), and the hooks
//! tree of `contrib/hooks` in `/etc/luo/hooks` (root's, not group- or other-writable: the agent
//! checks). Under systemd (`service`), each boot checks the agent's `Type=notify` readiness.
//!
//! Standalone: the hooks' checkpoint directory is on a host directory, the guest's only
//! storage that outlives the boot. The first boot starts a workload, runs `luoctl prepare`,
//! waits for the prepared hooks (the checkpoint), loads the same kernel with `luoctl kexec
//! --load-only --reuse-cmdline` and leaves the reboot to `systemctl kexec`. The second boot's
//! systemd starts the agent, which finds `updated`, runs the updated hooks (the restore reads
//! the checkpoint back) and sends finish; the script checks the state is `normal`, the
//! journal, and the unit's exit status when it is stopped.
//!
//! Observer: the agent is a root storage daemon (the drop-in) that the shutdown of `systemctl
//! kexec` neither stops nor kills. The first boot starts the workload as a unit of its own,
//! which hands its memfd to the agent; `luoctl prepare` has the agent preserve it, and
//! `systemctl kexec` stops the workload but leaves the agent with the session. In the second
//! boot the workload claims its memory back and checks every page, and the agent finishes.
//!
//! The journal lives in the tmpfs and the kexec loses it, so journald forwards it to the
//! console, which the host reads across both boots: standalone, the agent's lines from each
//! boot, the unit stopped cleanly by the kexec's shutdown, and the checkpoint saved in the first
//! boot equal to the one restored in the second; observer, the agent left running by the
//! shutdown, and the workload's counter resumed where it was.

use std::time::{Duration, Instant};

use luo_sysfs_abi::State;
use luo_sysfs_abi::log::{self, Message};

use crate::build::cache;
use crate::build::kernel::Kernel;
use crate::guest::console;
use crate::guest::runner::{self, GuestOptions, GuestRun, Stream};
use crate::run::{self, Result};
use crate::scenario::report::{self, Report};
use crate::scenario::{self, lines, liveupdate};

/// The test's name in its group (`systemd/standalone`).
pub const STANDALONE: &str = "standalone";

/// The observer flavour's test (`systemd/observer`): the agent, with the drop-in of
/// `contrib/systemd/luo-agent.service.d/`, holds a workload's memfd in a mainline session
/// through `systemctl kexec`'s shutdown.
pub const OBSERVER: &str = "observer";

/// Every test of the group, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    [STANDALONE, OBSERVER].into_iter()
}

/// The observer test's script (both boots, both phases).
const OBSERVER_SCRIPT: &str = include_str!("../../../tests/guest-scripts/systemd-observer.sh");

/// The line the observer test's second boot prints when the cycle held.
const OBSERVER_EXPECTED: &str =
    "systemd observer live update: generation 1, memory restored, session finished, state normal";

/// How much memory the observer test's workload keeps across the kexec.
const OBSERVER_MIB: u64 = 64;

/// The line the second boot prints when the cycle held.
const EXPECTED: &str = "systemd live update: generation 1, restored, finished, state normal";

/// The script, for both boots and both phases. `LUOCTL`, `BZIMAGE` and `DIR` come first.
const SCRIPT: &str = include_str!("../../../tests/guest-scripts/systemd-standalone.sh");

/// The functions both scripts use, put before each.
const LIB: &str = include_str!("../../../tests/guest-scripts/systemd-lib.sh");

/// Runs the test on `kernel`, which has luo built in; `rerun` is the command that runs it
/// alone.
pub fn run_each(kernel: &Kernel, tests: &[&str], rerun: impl Fn(&str) -> String) -> Result {
    for test in tests {
        let result = match *test {
            STANDALONE => standalone(kernel),
            OBSERVER => observer(kernel),
            other => return Err(format!("no systemd test '{other}'")),
        };
        result.map_err(|report| scenario::rerun_alone(&report, &rerun(test)))?;
    }
    Ok(())
}

/// The standalone cycle under systemd.
fn standalone(kernel: &Kernel) -> Result {
    liveupdate::build_luoctl()?;
    let dir = cache::scratch("systemd")?;
    liveupdate::clear(&dir)?;
    run::step("live update under systemd as PID 1, standalone flavour (QEMU)");
    let bzimage = kernel.build.join("arch/x86/boot/bzImage");
    let script = format!(
        "LUOCTL=target/debug/luoctl\nBZIMAGE={}\nDIR={}\n{LIB}{SCRIPT}",
        runner::shell_quote(&bzimage.to_string_lossy()),
        runner::shell_quote(&dir.to_string_lossy()),
    );
    let options = GuestOptions {
        rw_dirs: vec![dir.clone()],
        systemd: true,
        ..GuestOptions::default()
    };
    let what = "the live update under systemd";
    let (guest, arrivals) = boot(
        kernel,
        &script,
        &options,
        what,
        "systemd-standalone",
        EXPECTED,
    )?;
    let console = check_console(&guest.console).map_err(|err| format!("{what}: {err}"))?;
    report(what, &guest, &arrivals, &console);
    Ok(())
}

/// The observer flavour's cycle under systemd: the agent, a root storage daemon, keeps the
/// workload's memfd in a session through the shutdown of `systemctl kexec`.
fn observer(kernel: &Kernel) -> Result {
    liveupdate::build_userspace()?;
    run::step(&format!(
        "live update under systemd as PID 1, observer flavour (liveupdate=on), {OBSERVER_MIB} MiB \
         kept by the agent (QEMU)"
    ));
    let bzimage = kernel.build.join("arch/x86/boot/bzImage");
    let workload = cache::workspace().join("target/debug/examples/workload");
    let script = format!(
        "LUOCTL=target/debug/luoctl\nWORKLOAD={}\nBZIMAGE={}\nMIB={OBSERVER_MIB}\n{LIB}{OBSERVER_SCRIPT}",
        runner::shell_quote(&workload.to_string_lossy()),
        runner::shell_quote(&bzimage.to_string_lossy()),
    );
    let options = GuestOptions {
        append: vec!["liveupdate=on".to_owned()],
        systemd: true,
        ..GuestOptions::default()
    };
    let what = "the observer live update under systemd";
    let (guest, arrivals) = boot(
        kernel,
        &script,
        &options,
        what,
        "systemd-observer",
        OBSERVER_EXPECTED,
    )?;
    let console = check_observer_console(&guest.stdout, &guest.console).map_err(|err| {
        format!(
            "{what}: {err}\n--- guest console (last 60 lines) ---\n{}",
            tail(&guest.console, 60)
        )
    })?;
    report(what, &guest, &arrivals, &console);
    Ok(())
}

/// Boots the systemd guest with `script` and checks that it succeeded and printed `expected`;
/// returns the run and when each console line reached the host. The whole console goes to the
/// log `log_name`.
fn boot(
    kernel: &Kernel,
    script: &str,
    options: &GuestOptions,
    what: &str,
    log_name: &str,
    expected: &str,
) -> Result<(GuestRun, Vec<(Duration, String)>)> {
    let start = Instant::now();
    let mut arrivals: Vec<(Duration, String)> = Vec::new();
    let guest = runner::run_in_guest_with(&kernel.build, script, options, |stream, line, at| {
        if stream == Stream::Console {
            arrivals.push((at.saturating_duration_since(start), line.to_owned()));
        }
    })?;
    // The whole console (both boots' journals) for a person to read; the report shows its end.
    let log = cache::log(&format!("{log_name}-console"))?;
    std::fs::write(&log, &guest.console)
        .map_err(|err| format!("cannot write {}: {err}", log.display()))?;
    if !guest.success() {
        return Err(format!(
            "{}\nthe whole console: {}",
            runner::failure_report(what, &guest),
            log.display()
        ));
    }
    if !guest.stdout.lines().any(|line| line.trim() == expected) {
        return Err(format!(
            "{what}: expected the line '{expected}'; the guest printed:\n{}\nthe whole console: {}",
            guest.stdout,
            log.display()
        ));
    }
    Ok((guest, arrivals))
}

/// Prints what a passed test found: its notes, the boot times and the agent's console lines.
fn report(what: &str, guest: &GuestRun, arrivals: &[(Duration, String)], console: &[String]) {
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines().filter(|l| l.starts_with("note:")) {
        eprintln!("      {line}");
    }
    for (boot, (from, took)) in boot_times(arrivals).iter().enumerate() {
        eprintln!(
            "      note: boot {boot}: {took:.1?} from {from} to the agent's READY (systemd's \
             'Started luo-agent.service', host clock)"
        );
    }
    eprintln!("      the agent's journal lines on the console, both boots:");
    for line in console {
        eprintln!("        {line}");
    }
}

/// The last `count` lines of `text`.
fn tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Checks the observer cycle: on the output (`stdout`), the memory the workload checked in the
/// second boot is the memory it stamped in the first (same check); on the console (the
/// journal of both boots, forwarded by journald, and the kernel's and systemd-shutdown's
/// lines), the first boot's shutdown stopped the workload but neither stopped nor killed the
/// agent, and the workload's counter resumed where the first boot left it. Returns the lines
/// of the agent, the workload, systemd about them, and the jump.
fn check_observer_console(stdout: &str, console: &str) -> Result<Vec<String>> {
    let console = mend(console);
    let boots: Vec<&str> = console.split(console::LINUX_VERSION).skip(1).collect();
    let [first, _] = boots[..] else {
        return Err(format!(
            "expected two boots on the console, found {}",
            boots.len()
        ));
    };
    // The script's notes carry the workload's journal lines of each boot.
    let noted = |boot: &'static str| {
        stdout
            .lines()
            .filter_map(move |line| line.strip_prefix(boot))
            .filter_map(report::find)
    };
    let before = noted("note: boot 0: ")
        .find_map(|report| match report {
            Report::Stamped { check, .. } => Some(check),
            _ => None,
        })
        .ok_or("the first boot printed no 'workload: N MiB stamped in ..., check X'")?;
    let (after, resumed) = noted("note: boot 1: ")
        .find_map(|report| match report {
            Report::Restored {
                check, resumes_at, ..
            } => Some((check, resumes_at)),
            _ => None,
        })
        .ok_or("the second boot printed no 'workload: restored'")?;
    if before != after {
        return Err(format!(
            "the workload's memory changed across the kexec: check {before:016x} before, \
             {after:016x} after"
        ));
    }
    let last = first
        .lines()
        .rev()
        .find_map(|line| match report::find(line) {
            Some(Report::CounterAt(value)) => Some(value),
            _ => None,
        })
        .ok_or(
            "the first boot's journal has no 'workload: counter at N': nothing to compare the \
             resumed counter with",
        )?;
    if resumed < last {
        return Err(format!(
            "the workload's counter went back: {last} in the first boot, resumed at {resumed}"
        ));
    }
    // The shutdown ran its transaction (the workload's unit was stopped) and left the agent
    // alone: no stop job for its unit, no SIGTERM or SIGKILL from systemd-shutdown (which
    // names a process it has to kill in the end).
    if !first.contains("Stopped luo-workload.service") {
        return Err("the first boot's shutdown did not stop luo-workload.service".to_owned());
    }
    for stopped in [
        "Stopping luo-agent.service",
        "Stopped luo-agent.service",
        "luo-agent.service: Deactivated",
        "luo-agent.service: Main process exited",
        "luo-agent.service: Killing",
    ] {
        if first.contains(stopped) {
            return Err(format!(
                "the first boot's shutdown stopped the agent: '{stopped}'"
            ));
        }
    }
    // systemd-shutdown's final kill skipped the agent, by its '@': it says so (a notice, as the
    // agent runs from the root file system), and it sent it no SIGKILL.
    let agent = first
        .lines()
        .find(|line| line.contains("luoctl agent: listening at"))
        .and_then(|line| line.split_once("luoctl["))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(pid, _)| pid.to_owned())
        .ok_or("the first boot's journal has no 'luoctl[PID]: luoctl agent: listening at'")?;
    let spared = format!("Process {agent} (luoctl) has been marked to be excluded from killing");
    if !first.contains(&spared) {
        return Err(format!(
            "systemd-shutdown did not skip the agent (pid {agent}): no '{spared}'"
        ));
    }
    if first.contains(&format!("Sending SIGKILL to PID {agent} ")) {
        return Err(format!(
            "systemd-shutdown sent SIGKILL to the agent (pid {agent})"
        ));
    }
    // The workload went away in the shutdown's transaction; the agent kept its session.
    if !first.contains("the workload of session workload went away; its session stays") {
        return Err(
            "the agent did not say that the workload's session stays when the shutdown stopped \
             the workload"
                .to_owned(),
        );
    }
    if !first.contains(console::KEXEC_JUMP) {
        return Err("the first boot did not end in a kexec".to_owned());
    }
    Ok(console
        .lines()
        .filter(|line| {
            line.contains("] luoctl[")
                || line.contains("] workload[")
                || (line.contains("systemd[1]: ")
                    && (line.contains("luo-agent.service") || line.contains("luo-workload")))
                || (line.contains("systemd-shutdown[1]: ")
                    && ["remaining processes", "excluded from killing", "with kexec"]
                        .iter()
                        .any(|what| line.contains(what)))
                || line.contains(log::PREFIX)
                || line.contains(console::KEXEC_JUMP)
        })
        .map(str::to_owned)
        .collect())
}

/// The console lines of the agent (forwarded by journald), across both boots, after checking
/// that the first boot's shutdown stopped the unit cleanly and that the checkpoint restored in
/// the second boot is the one saved in the first. The console is read mended (see [`mend`]).
fn check_console(console: &str) -> Result<Vec<String>> {
    let console = mend(console);
    let boots: Vec<&str> = console.split(console::LINUX_VERSION).skip(1).collect();
    let [first, second] = boots[..] else {
        return Err(format!(
            "expected two boots on the console, found {}",
            boots.len()
        ));
    };
    let saved = value_after(first, lines::CHECKPOINT_SAVED)
        .ok_or("the first boot's journal has no 'checkpoint: saved'")?;
    let restored = value_after(second, lines::RESTORE_FOUND)
        .ok_or("the second boot's journal has no 'restore: found checkpoint'")?;
    if saved != restored {
        return Err(format!(
            "the first boot saved checkpoint {saved}, the second restored {restored}"
        ));
    }
    for needed in [
        "luo-agent.service: Deactivated successfully",
        "Stopped luo-agent.service",
    ] {
        if !first.contains(needed) {
            return Err(format!(
                "the first boot's shutdown for the kexec did not log '{needed}'"
            ));
        }
    }
    // The agent's own lines (`luoctl[PID]:`, its hooks' too), systemd's about its unit, and
    // the jump between the boots.
    Ok(console
        .lines()
        .filter(|line| {
            line.contains("] luoctl[")
                || (line.contains("systemd[1]: ") && line.contains("luo-agent.service"))
                || freezes(line)
                || line.contains(console::KEXEC_JUMP)
        })
        .map(str::to_owned)
        .collect())
}

/// Whether the console line `line` is luo's freeze for the kexec (`prepared` to `frozen`).
fn freezes(line: &str) -> bool {
    Message::find(line.trim_start())
        .and_then(|message| message.switched())
        .is_some_and(|switched| (switched.from, switched.to) == (State::Prepared, State::Frozen))
}

/// The console with the kernel's lines taken out of the journal's lines they broke into: the
/// kernel and journald write to the console at once, and a kernel line (`[   86.274882]
/// luo: ...`) can land in the middle of a journal line, whose rest then starts the next line.
fn mend(console: &str) -> String {
    let mut mended = String::with_capacity(console.len());
    let mut carried = String::new();
    for line in console.lines() {
        let line = format!("{carried}{line}");
        carried.clear();
        match kernel_stamp_inside(&line) {
            Some(at) => {
                mended.push_str(&line[at..]);
                mended.push('\n');
                carried = line[..at].to_owned();
            }
            None => {
                mended.push_str(&line);
                mended.push('\n');
            }
        }
    }
    mended.push_str(&carried);
    mended
}

/// Where a kernel time stamp (`[` spaces, digits, `.`, six digits, `]`) starts in `line`
/// after its start, if one does.
fn kernel_stamp_inside(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (1..bytes.len()).find(|&at| {
        if bytes[at] != b'[' {
            return false;
        }
        let Some(end) = line[at..].find(']') else {
            return false;
        };
        let stamp = line[at + 1..at + end].trim_start();
        let Some((secs, micros)) = stamp.split_once('.') else {
            return false;
        };
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit())
            && line[at + end + 1..].starts_with(' ')
    })
}

/// The word after `prefix` on the first line that has it.
fn value_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.split_once(prefix))
        .and_then(|(_, rest)| rest.split_whitespace().next())
}

/// For each boot, where it started and how long after that systemd started the agent (READY):
/// the first from QEMU's start (power-on), the second from the old kernel's last line.
fn boot_times(arrivals: &[(Duration, String)]) -> Vec<(&'static str, Duration)> {
    let mut times = Vec::new();
    let mut from = (Duration::ZERO, "power-on");
    for (at, line) in arrivals {
        if line.contains(console::KEXEC_JUMP) {
            from = (*at, "the kexec");
        }
        if line.contains("Started luo-agent.service") {
            times.push((from.1, at.saturating_sub(from.0)));
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_is_read_from_the_journal_line() {
        let boot = "[ 30.3] luoctl[91]: checkpoint: saved 6\n[ 30.4] other\n";
        assert_eq!(value_after(boot, "checkpoint: saved "), Some("6"));
        assert_eq!(value_after(boot, "restore: found checkpoint "), None);
    }

    #[test]
    fn boot_times_start_at_power_on_then_at_the_kexec() {
        let line = |secs: u64, text: &str| (Duration::from_secs(secs), text.to_owned());
        let arrivals = [
            line(24, "[ 20.2] systemd[1]: Started luo-agent.service - agent."),
            line(40, "[ 39.0] kexec_core: Starting new kernel"),
            line(65, "[ 24.2] systemd[1]: Started luo-agent.service - agent."),
        ];
        assert_eq!(
            boot_times(&arrivals),
            [
                ("power-on", Duration::from_secs(24)),
                ("the kexec", Duration::from_secs(25))
            ]
        );
    }

    /// A console like the observer test's, with `agent_line` in the first boot's shutdown and
    /// a kernel line broken into the workload's 'restored' line.
    fn observer_console(agent_line: &str) -> String {
        format!(
            "[ 0.0] Linux version 7.3\n\
             [ 27.6] luoctl[56]: luoctl agent: listening at /run/luo/agent.sock (observer)\n\
             [ 81.2] workload[98]: workload: counter at 260\n\
             [ 82.8] luoctl[56]: luoctl agent: the workload of session workload went away; its \
             session stays, preserved for the kexec\n\
             [ 83.1] systemd[1]: Stopped luo-workload.service - workload.\n\
             {agent_line}\
             [ 89.8] systemd-shutdown[1]: Process 56 (luoctl) has been marked to be excluded \
             from killing. It is running from the root file system\n\
             [ 91.5] kexec_core: Starting new kernel\n\
             [ 0.0] Linux version 7.3\n\
             [  100.3] workload[105]: workload: restored[   86.274882] luo: observer: Switched\n \
             64 MiB from session workload, check 8f97 (every page checked); counter resumes at 279\n"
        )
    }

    /// The output's notes of the workload's check before and after the kexec.
    fn observer_stdout(after: u64) -> String {
        let stamped = Report::Stamped {
            mib: 64,
            millis: 10463,
            check: 0x8f97,
        };
        let restored = Report::Restored {
            mib: 64,
            session: "workload",
            check: after,
            millis: 1529,
            resumes_at: 279,
        };
        format!("note: boot 0: {stamped}\nnote: boot 1: {restored}\n")
    }

    #[test]
    fn the_observer_console_shows_the_memory_kept_by_an_agent_left_running() {
        let lines = check_observer_console(&observer_stdout(0x8f97), &observer_console(""));
        let lines = lines.unwrap();
        assert!(
            lines
                .iter()
                .any(|line| line.contains("workload: restored 64 MiB")),
            "{lines:?}"
        );
        let err =
            check_observer_console(&observer_stdout(0xbad), &observer_console("")).unwrap_err();
        assert!(
            err.contains("check 0000000000008f97 before, 0000000000000bad after"),
            "{err}"
        );
        let stopped = "[ 83.0] systemd[1]: Stopping luo-agent.service - agent...\n";
        let err = check_observer_console(&observer_stdout(0x8f97), &observer_console(stopped))
            .unwrap_err();
        assert!(err.contains("stopped the agent"), "{err}");
        let killed = "[ 89.9] systemd-shutdown[1]: Sending SIGKILL to PID 56 (luoctl).\n";
        let err = check_observer_console(&observer_stdout(0x8f97), &observer_console(killed))
            .unwrap_err();
        assert!(err.contains("sent SIGKILL to the agent"), "{err}");
    }

    #[test]
    fn a_first_boot_without_the_counter_has_nothing_to_compare_with() {
        let console =
            observer_console("").replace("[ 81.2] workload[98]: workload: counter at 260\n", "");
        let err = check_observer_console(&observer_stdout(0x8f97), &console).unwrap_err();
        assert!(err.contains("no 'workload: counter at N'"), "{err}");
    }

    /// A console like the standalone test's, with a kernel line broken into the checkpoint's
    /// journal line, and `restored` as the checkpoint the second boot found.
    fn standalone_console(restored: u64) -> String {
        format!(
            "[ 0.0] Linux version 7.3\n\
             [ 30.3] luoctl[91]: checkpoint: saved[   30.274882] luo: Switched from [normal] to \
             [prepared]\n 6\n\
             [ 38.0] systemd[1]: luo-agent.service: Deactivated successfully.\n\
             [ 38.1] systemd[1]: Stopped luo-agent.service - agent.\n\
             [ 39.0] kexec_core: Starting new kernel\n\
             [ 0.0] Linux version 7.3\n\
             [ 25.0] luoctl[80]: restore: found checkpoint {restored}\n"
        )
    }

    #[test]
    fn the_checkpoints_are_compared_on_the_mended_console() {
        let lines = check_console(&standalone_console(6)).unwrap();
        assert!(
            lines.iter().any(|l| l.ends_with("checkpoint: saved 6")),
            "{lines:?}"
        );
        let err = check_console(&standalone_console(7)).unwrap_err();
        assert!(
            err.contains("the first boot saved checkpoint 6, the second restored 7"),
            "{err}"
        );
    }

    #[test]
    fn a_kernel_line_inside_a_journal_line_is_taken_out() {
        let console = "[ 86.3] workload[106]: workload: restored[   86.274882] luo: to [normal]\n \
                       64 MiB, check a0ed\n[ 86.4] next\n";
        assert_eq!(
            mend(console),
            "[   86.274882] luo: to [normal]\n\
             [ 86.3] workload[106]: workload: restored 64 MiB, check a0ed\n[ 86.4] next\n"
        );
    }

    #[test]
    fn the_script_names_the_expected_line() {
        assert!(SCRIPT.contains(EXPECTED));
        assert!(OBSERVER_SCRIPT.contains(OBSERVER_EXPECTED));
    }

    #[test]
    fn what_the_script_greps_in_the_agents_log_the_agent_logs() {
        lines::assert_agent_logs(
            SCRIPT,
            &[
                ("'90-sync succeeded'", "\"{} succeeded in {took}\""),
                (
                    "'sent finish'",
                    "\"every updated hook succeeded: sent finish{}; state {state}\"",
                ),
                ("'state updated at start'", "\"state {state} at start\""),
            ],
        );
        assert!(SCRIPT.contains(&format!("grep -q '{}", lines::RESTORE_FOUND.trim_end())));
    }

    #[test]
    fn the_freeze_is_found_as_the_module_prints_it() {
        use luo_sysfs_abi::Flavour;
        use luo_sysfs_abi::log::{Line, Switched};
        let freeze = Line::Switched(Switched {
            flavour: Flavour::Standalone,
            from: State::Prepared,
            to: State::Frozen,
        });
        assert!(freezes(&format!("[   86.274882] {}{freeze}", log::PREFIX)));
        let prepare = "[   80.1] luo: Switched from [normal] to [prepared]";
        assert!(!freezes(prepare));
    }
}
