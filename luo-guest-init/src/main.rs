//! `luo-guest-init`: PID 1 of the guests `cargo xtask vm` boots.
//!
//! It mounts the pseudo file systems and scratch space, mounts the writable host directories,
//! runs `sh SCRIPT` in the given directory with its standard output on the virtio port the
//! host reads, writes the script's exit status on the status port, and powers the guest off.
//! Everything it needs is on the kernel command line (see [`luo_guest_init::protocol`]), so a
//! kernel that a kexec inside the guest starts with the same command line runs the same script
//! again. It does nothing else: no udev, no services, which is what makes the guest boot fast.
//!
//! With `luo_init.systemd=1` it boots Debian's systemd instead, on an overlay of the host's
//! root, and systemd runs the script as a service through `luo-guest-init --service` (see
//! [`systemd`]).

mod console;
mod mounts;
mod ports;
mod systemd;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

use luo_guest_init::protocol::{self, Config, STATUS_PORT, STDOUT_PORT};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};
use rustix::system::RebootCommand;

use console::Console;

/// The script's `PATH`: the kernel gives init none.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn main() {
    // The script's service under systemd (the systemd mode): not PID 1, so the guard below
    // does not apply; it powers the machine off too (through systemd), so `service` has its
    // own guard, and exits 2 untouched anywhere but in a systemd-mode guest of ours.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "--service")
    {
        systemd::service();
    }
    // This program powers the machine off when it is done: refuse to start anywhere but as a
    // guest's init, where the kernel starts it as PID 1.
    if rustix::process::getpid() != Pid::INIT {
        eprintln!(
            "luo-guest-init: this is the init of the guests of `cargo xtask vm` (it mounts file \
             systems and powers the machine off), so it runs only as PID 1; use `cargo xtask vm \
             -- COMMAND` instead"
        );
        std::process::exit(2);
    }
    let mut console = Console::new();
    if let Err(message) = run(&mut console) {
        console.say(&format!(
            "error: {message}; powering off without an exit status"
        ));
    }
    power_off(&mut console)
}

/// Everything between boot and power-off; an error means the script's status was not sent.
fn run(console: &mut Console) -> Result<(), String> {
    console.info("started");
    mounts::mount_proc()?;
    let config = read_config()?;
    if config.systemd {
        // Returns only if systemd could not be started, or the setup phase failed.
        let code = systemd::boot(console, &config)?;
        return report(console, &config, code);
    }
    // The script and its working directory must not vanish under the init's own `/tmp`.
    let script_dir = std::path::Path::new(&config.script)
        .parent()
        .and_then(|dir| dir.to_str())
        .unwrap_or("/");
    let mut keep = vec![config.cwd.as_str(), script_dir];
    keep.extend(config.keep.iter().map(String::as_str));
    mounts::mount_system(&keep)?;
    console.open_kmsg();
    for share in &config.shares {
        mounts::mount_share(share)?;
    }
    let stdout = ports::open(STDOUT_PORT)?;
    console.info(&format!("running sh {} in {}", config.script, config.cwd));
    let code = run_script(&config, systemd::script_command(&config, None, stdout))?;
    report(console, &config, code)
}

/// The configuration on the kernel command line.
fn read_config() -> Result<Config, String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline")
        .map_err(|err| format!("cannot read /proc/cmdline: {err}"))?;
    Config::from_cmdline(&cmdline).map_err(|err| err.to_string())
}

/// Writes the script's exit status `code` on the status port.
fn report(console: &mut Console, config: &Config, code: i32) -> Result<(), String> {
    let mut status = ports::open(STATUS_PORT)?;
    console.say(&format!("sh {} exited {code}; powering off", config.script));
    status
        .write_all(protocol::status_line(code).as_bytes())
        .map_err(|err| format!("cannot write the exit status on the port {STATUS_PORT}: {err}"))
}

/// Runs the script (`command`) and reaps every child until the script's shell exits; returns
/// its exit status as a shell reports it (128 + the signal when a signal ended it).
fn run_script(config: &Config, mut command: Command) -> Result<i32, String> {
    let child = command.spawn().map_err(|err| {
        format!(
            "cannot start /bin/sh {} in {}: {err}",
            config.script, config.cwd
        )
    })?;
    let shell = i32::try_from(child.id()).map_err(|err| format!("the shell's pid: {err}"))?;
    // As PID 1 the init inherits every orphan (the script's background jobs): reap them all,
    // not only the shell, so none stays a zombie.
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == shell => {
                // The kernel's wait status, which rustix keeps as unsigned: the same bits.
                let raw = i32::from_ne_bytes(status.as_raw().to_ne_bytes());
                return Ok(exit_code(ExitStatus::from_raw(raw)));
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => return Err(format!("waiting for /bin/sh {}: {err}", config.script)),
        }
    }
}

/// A child's exit status as a shell reports it (`$?`): its exit code, or 128 + the signal that
/// ended it; -1 for a status that is neither (a stopped child, which is not waited for here).
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// Powers the guest off; ACPI makes QEMU exit. Should that fail, returning from PID 1 panics
/// the kernel, and `panic=-1` with QEMU's `-no-reboot` ends QEMU too.
fn power_off(console: &mut Console) -> ! {
    rustix::fs::sync();
    if let Err(err) = rustix::system::reboot(RebootCommand::PowerOff) {
        console.say(&format!("cannot power off: {err}"));
    }
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_status_reads_as_the_shells_dollar_question_mark() {
        // Raw wait statuses, as the kernel reports them: the code in the second byte, a
        // terminating signal in the low seven bits, 0x7f for a stopped child.
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15 | 0x80)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw((19 << 8) | 0x7f)), -1);
    }

    #[test]
    fn the_script_status_is_the_waited_status() {
        // run_script reaps any child, as PID 1 must: no other test of this binary starts one.
        let config = Config::from_cmdline("luo_init.script=/dev/null luo_init.cwd=/").unwrap();
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "exit 7"]);
        assert_eq!(run_script(&config, command), Ok(7));
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "kill -TERM $$"]);
        assert_eq!(run_script(&config, command), Ok(143));
    }
}
