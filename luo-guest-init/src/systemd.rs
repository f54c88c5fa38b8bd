//! The systemd mode (`luo_init.systemd=1`): Debian's own systemd as PID 1, on a root it can
//! live on, with the host's units off.
//!
//! The host's `/` is read-only over 9p, and systemd writes to `/etc`, `/var` and more. So the
//! init mounts an overlay: the host's root as the lower layer, a tmpfs as the upper one (what
//! the guest writes is gone at the next boot, kexec or not, like a fresh disk image of the
//! host). In the overlay it cuts the host's units down to what a test needs (every `.wants/`,
//! `.requires/` and `.upholds/` directory and every generator goes, so nothing of the host's
//! configuration starts: no getty, no postgresql, no fstab mounts), and writes
//! [`SYSTEMD_TARGET`] and [`SYSTEMD_SERVICE`]. It runs the script once chrooted in the overlay
//! before systemd starts ([`PHASE_VAR`]`=setup`: install and enable the units under test, as a
//! package would on a disk), switches the root to the overlay, and executes systemd, which
//! boots [`SYSTEMD_TARGET`] (`systemd.unit=` on the command line): journald,
//! `multi-user.target` with only what the setup enabled, and the service that runs the script
//! again ([`PHASE_VAR`]`=service`) and powers off with its status (`luo-guest-init --service`,
//! see [`service`]).

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use luo_guest_init::protocol::{
    self, Config, PHASE_VAR, STATUS_PORT, STDOUT_PORT, SYSTEMD_SERVICE, SYSTEMD_TARGET,
};
use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

use crate::console::Console;
use crate::{PATH, mounts, ports};

/// Where the overlay's layers are built: a tmpfs on the host's `/run` (which every Debian
/// root has); the new root is `STAGE/root`. The old root, with this tmpfs, is detached once
/// the overlay is the root; the overlay keeps its layers alive.
const STAGE: &str = "/run";

/// systemd, as Debian installs it (`/sbin/init` links to it).
const SYSTEMD: &str = "/lib/systemd/systemd";

/// The directories systemd reads units from, in the overlay; a path that is a link to another
/// one of them (`/lib` on a merged-/usr system) is cut once.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The directories of generators, which turn the host's configuration into units (fstab
/// mounts, SysV scripts, a getty on the serial console, the host's own): all of them go.
const GENERATOR_DIRS: &[&str] = &[
    "/etc/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
    "/lib/systemd/system-generators",
];

/// Boots systemd on an overlay of the host's root, after the script's setup phase. Returns
/// only when it could not: with the setup's exit status when the setup failed (the init
/// reports it and powers off), or an error.
pub fn boot(console: &mut Console, config: &Config) -> Result<i32, String> {
    // The unit names this binary by its path, which the overlay shows unchanged.
    let init = std::env::current_exe()
        .map_err(|err| format!("cannot find my own path for {SYSTEMD_SERVICE}: {err}"))?;
    let root = overlay()?;
    console.info("overlay mounted, the host's units cut");
    for (fstype, target, flags) in [
        ("proc", "proc", mounts::PSEUDO),
        ("sysfs", "sys", mounts::PSEUDO),
        ("devtmpfs", "dev", MountFlags::NOSUID),
    ] {
        mount_at(fstype, &root.join(target), flags, "")?;
    }
    for share in &config.shares {
        mounts::mount_share_at(share, &root)?;
    }
    write_units(&root, &init)?;
    switch_root(&root)?;
    console.info("switched to the overlay; running the setup phase");
    let code = setup(config)?;
    if code != 0 {
        console.say(&format!(
            "the setup phase (sh {}) exited {code}; not starting systemd",
            config.script
        ));
        return Ok(code);
    }
    console.info(&format!("executing {SYSTEMD}"));
    let err = Command::new(SYSTEMD).env_clear().exec();
    Err(format!("cannot execute {SYSTEMD}: {err}"))
}

/// Mounts the overlay (the host's root under a tmpfs), with the host's units cut in its upper
/// layer beforehand ([`cut`]), and returns where.
fn overlay() -> Result<PathBuf, String> {
    let stage = Path::new(STAGE);
    mount_at(
        "tmpfs",
        stage,
        MountFlags::NOSUID.union(MountFlags::NODEV),
        "mode=0755",
    )?;
    let upper = stage.join("upper");
    for dir in [&upper, &stage.join("work"), &stage.join("root")] {
        std::fs::create_dir(dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    cut(&upper)?;
    let root = stage.join("root");
    mount_at(
        "overlay",
        &root,
        MountFlags::empty(),
        &format!("lowerdir=/,upperdir={STAGE}/upper,workdir={STAGE}/work"),
    )
    .map_err(|err| {
        format!("{err} (the kernel needs CONFIG_OVERLAY_FS, the tmpfs CONFIG_TMPFS_XATTR)")
    })?;
    Ok(root)
}

/// Hides in the overlay, by whiteouts written straight into its empty `upper` layer (a
/// character device 0:0 hides the lower file or directory of its name: overlayfs' own format):
/// every wants/requires/upholds directory of systemd's unit directories and every generator
/// directory, so that no host unit is pulled in (what starts is what [`SYSTEMD_TARGET`] names
/// and what the setup phase enables); and `/.dockerenv`, if the host is a Docker container:
/// systemd would take the guest for a container, read PID 1's arguments instead of the kernel
/// command line (no `systemd.unit=`), and skip the kexec at shutdown. Deleting through the
/// mounted overlay would do the same one file at a time over 9p: seconds under TCG.
fn cut(upper: &Path) -> Result<(), String> {
    let mut hidden: Vec<PathBuf> = vec![PathBuf::from("/.dockerenv")];
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in UNIT_DIRS.iter().chain(GENERATOR_DIRS) {
        // The lower layer is the current root. `/lib` may link to `/usr/lib`: cut it once.
        let Ok(real) = Path::new(dir).canonicalize() else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        seen.push(real.clone());
        if GENERATOR_DIRS.contains(dir) {
            hidden.push(real);
            continue;
        }
        let entries =
            std::fs::read_dir(&real).map_err(|err| format!("cannot read {dir}: {err}"))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir
                && [".wants", ".requires", ".upholds"]
                    .iter()
                    .any(|s| name.ends_with(s))
            {
                hidden.push(entry.path());
            }
        }
    }
    for path in hidden.iter().filter(|path| path.symlink_metadata().is_ok()) {
        whiteout(upper, path)?;
    }
    Ok(())
}

/// A whiteout for the lower `path` in `upper`, with its parent directories made in `upper`
/// with the lower ones' modes (an upper directory's attributes are what the overlay shows).
fn whiteout(upper: &Path, path: &Path) -> Result<(), String> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let mut lower = PathBuf::from("/");
    let mut made = upper.to_path_buf();
    if let Some(parent) = relative.parent() {
        for part in parent.components() {
            lower.push(part);
            made.push(part);
            if made.exists() {
                continue;
            }
            let mode = std::fs::metadata(&lower)
                .map_err(|err| format!("cannot read {}: {err}", lower.display()))?
                .permissions()
                .mode();
            std::fs::create_dir(&made)
                .and_then(|()| {
                    std::fs::set_permissions(&made, std::fs::Permissions::from_mode(mode))
                })
                .map_err(|err| format!("cannot create {}: {err}", made.display()))?;
        }
    }
    mknodat(
        CWD,
        upper.join(relative),
        FileType::CharacterDevice,
        Mode::empty(),
        makedev(0, 0),
    )
    .map_err(|err| format!("cannot hide {} in the overlay: {err}", path.display()))
}

/// The test target and the script's service, in the overlay's `/etc/systemd/system`.
fn write_units(root: &Path, init: &Path) -> Result<(), String> {
    let dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let exec = unit_path(init)?;
    let target = format!(
        "# Written by luo-guest-init: the guest's goal instead of the host's default target.\n\
         [Unit]\n\
         Description=luo guest test\n\
         # journald: the journal, forwarded to the console (systemd.journald.forward_to_console);\n\
         # debugfs: KHO's directory, which luoctl kexec checks; multi-user.target: what the\n\
         # setup phase enabled (the host's own wants are cut).\n\
         Wants=systemd-journald.service sys-kernel-debug.mount multi-user.target {SYSTEMD_SERVICE}\n\
         AllowIsolate=yes\n"
    );
    let service = format!(
        "# Written by luo-guest-init: runs the guest's script, reports its exit status to the\n\
         # host and powers off.\n\
         [Unit]\n\
         Description=luo guest script\n\
         After=multi-user.target\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={exec} --service\n\
         # SIGTERM to luo-guest-init alone, which dies of it without writing a status: a\n\
         # shutdown the script started (systemctl kexec) is not the script's end. The script\n\
         # and what it started get SIGKILL after.\n\
         KillMode=mixed\n\
         StandardOutput=journal\n\
         StandardError=journal\n"
    );
    for (name, text) in [(SYSTEMD_TARGET, target), (SYSTEMD_SERVICE, service)] {
        std::fs::write(dir.join(name), text)
            .map_err(|err| format!("cannot write {name} in the overlay: {err}"))?;
    }
    Ok(())
}

/// `path` as a unit file's command: quoted (a checkout may lie behind a space), with
/// systemd's specifier character `%` and the `$` of its variable expansion in `ExecStart=`
/// (`$NAME`, `${NAME}`) doubled, so the path reaches the kernel as it is; the protocol keeps
/// `"` out of the paths.
fn unit_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .filter(|text| !text.contains('"') && !text.chars().any(char::is_control))
        .ok_or_else(|| format!("{} cannot be named in a unit file", path.display()))?;
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('%', "%%")
            .replace('$', "$$")
    ))
}

/// Makes `root` the root: `pivot_root(".", ".")` stacks the old root on the new one, and the
/// lazy unmount takes it (with the tmpfs of the layers, which the overlay keeps) out of sight.
fn switch_root(root: &Path) -> Result<(), String> {
    rustix::process::chdir(root)
        .map_err(|err| format!("cannot enter {}: {err}", root.display()))?;
    rustix::process::pivot_root(".", ".")
        .map_err(|err| format!("cannot make {} the root: {err}", root.display()))?;
    unmount(".", UnmountFlags::DETACH)
        .map_err(|err| format!("cannot detach the old root: {err}"))?;
    rustix::process::chdir("/").map_err(|err| format!("cannot enter the new root: {err}"))
}

/// Runs the script's setup phase: no service manager yet, so `systemctl enable` works on the
/// unit files only (`SYSTEMD_OFFLINE=1`).
fn setup(config: &Config) -> Result<i32, String> {
    let stdout = ports::open(STDOUT_PORT)?;
    let mut command = script_command(config, Some("setup"), stdout);
    command.env("SYSTEMD_OFFLINE", "1");
    crate::run_script(config, command)
}

/// `sh SCRIPT` in its directory with a clean environment, standard output on `stdout`, and
/// [`PHASE_VAR`] set to `phase` in the systemd mode (the plain mode has no phases).
pub fn script_command(config: &Config, phase: Option<&str>, stdout: File) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg(&config.script)
        .current_dir(&config.cwd)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        // The command's stderr is the serial console or the journal: ask for no colours.
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit());
    if let Some(phase) = phase {
        command.env(PHASE_VAR, phase);
    }
    command
}

/// `luo-guest-init --service`: the script under systemd, as [`SYSTEMD_SERVICE`]. Runs it,
/// writes its exit status on the status port, and asks systemd to power off; on an error, says
/// so on stderr (the journal, forwarded to the console) and powers off without a status, which
/// the host reports as an init failure.
///
/// It powers the machine off, so it first makes sure the machine is one of our guests in the
/// systemd mode ([`in_our_guest`]); anywhere else (a host, where root may run it by mistake)
/// it says why and exits 2 without touching the machine.
pub fn service() -> ! {
    let config = match in_our_guest(crate::read_config(), std::env::var_os(INVOCATION_ID)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("luo-guest-init: --service refused: {message}; nothing was run or stopped");
            std::process::exit(2);
        }
    };
    match run_service(&config) {
        Ok(code) => eprintln!("luo-guest-init: sh exited {code}; powering off"),
        Err(message) => {
            eprintln!("luo-guest-init: error: {message}; powering off without an exit status");
        }
    }
    // Through systemd, so that its shutdown runs and is seen on the console; `--no-block`
    // since the job stops this very service. If systemctl cannot, the system call does it.
    let asked = Command::new("systemctl")
        .args(["--no-block", "poweroff"])
        .status()
        .is_ok_and(|status| status.success());
    if !asked {
        rustix::fs::sync();
        let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    }
    std::process::exit(if asked { 0 } else { 1 })
}

/// The variable systemd sets for the processes of every unit it starts (the run's id), and
/// nothing else does: its absence says no systemd started this process as a service.
const INVOCATION_ID: &str = "INVOCATION_ID";

/// The configuration of `--service`, if everything says this process is [`SYSTEMD_SERVICE`]
/// in a guest that the runner of `cargo xtask` booted in the systemd mode: the kernel command line
/// (`config`, from `/proc/cmdline`) carries the runner's words and `luo_init.systemd=1`, and
/// systemd started the process (`invocation_id`, its [`INVOCATION_ID`]). Otherwise why not,
/// with what to do: the caller must not power the machine off then.
fn in_our_guest(
    config: Result<Config, String>,
    invocation_id: Option<std::ffi::OsString>,
) -> Result<Config, String> {
    let config = config.map_err(|err| {
        format!(
            "{err}; --service is the script's service in the guests that `cargo xtask` boots \
             in the systemd mode, and powers the machine off, so it runs only there"
        )
    })?;
    if !config.systemd {
        return Err(format!(
            "the kernel command line has no {}=1: this guest's init is luo-guest-init itself, \
             which runs the script; --service is for the systemd mode only",
            protocol::SYSTEMD_WORD
        ));
    }
    if invocation_id.is_none_or(|id| id.is_empty()) {
        return Err(format!(
            "${INVOCATION_ID} is not set, so systemd did not start this process; only \
             {SYSTEMD_SERVICE} runs --service"
        ));
    }
    Ok(config)
}

fn run_service(config: &Config) -> Result<i32, String> {
    let stdout = ports::open(STDOUT_PORT)?;
    let mut status = ports::open(STATUS_PORT)?;
    let code = script_command(config, Some("service"), stdout)
        .status()
        .map(crate::exit_code)
        .map_err(|err| format!("cannot run /bin/sh {}: {err}", config.script))?;
    status
        .write_all(protocol::status_line(code).as_bytes())
        .map_err(|err| format!("cannot write the exit status on the port {STATUS_PORT}: {err}"))?;
    Ok(code)
}

fn mount_at(fstype: &str, target: &Path, flags: MountFlags, data: &str) -> Result<(), String> {
    let data = CString::new(data).map_err(|err| err.to_string())?;
    mount(fstype, target, fstype, flags, Some(data.as_c_str()))
        .map_err(|err| format!("cannot mount {fstype} on {}: {err}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_path_is_quoted_with_specifiers_escaped() {
        assert_eq!(
            unit_path(Path::new("/tmp/a b/100%/init")).unwrap(),
            "\"/tmp/a b/100%%/init\""
        );
        assert!(unit_path(Path::new("/a\"b")).is_err());
    }

    #[test]
    fn a_unit_path_keeps_its_dollars_from_systemd_expansion() {
        // systemd would put $HOME's value (or nothing) in place of `$HOME` and `${HOME}`.
        assert_eq!(
            unit_path(Path::new("/tmp/$HOME/${HOME}/$$/init")).unwrap(),
            "\"/tmp/$$HOME/$${HOME}/$$$$/init\""
        );
    }

    fn guest_config(systemd: bool) -> Config {
        let mut cmdline = "console=ttyS0 luo_init.script=/s.sh luo_init.cwd=/work".to_owned();
        if systemd {
            cmdline.push_str(" luo_init.systemd=1");
        }
        Config::from_cmdline(&cmdline).unwrap()
    }

    #[test]
    fn the_service_runs_in_a_systemd_guest_started_by_systemd() {
        let config = guest_config(true);
        assert_eq!(
            in_our_guest(Ok(config.clone()), Some("0123abcd".into())),
            Ok(config)
        );
    }

    #[test]
    fn the_service_refuses_a_host_without_the_runners_command_line() {
        // A host's /proc/cmdline has no luo_init.script=: --service must not power it off.
        let host = Config::from_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet")
            .map_err(|err| err.to_string());
        let err = in_our_guest(host, Some("0123abcd".into())).unwrap_err();
        assert!(err.contains("luo_init.script"), "{err}");
        assert!(err.contains("runs only there"), "{err}");
    }

    #[test]
    fn the_service_refuses_the_plain_mode_and_a_process_systemd_did_not_start() {
        let err = in_our_guest(Ok(guest_config(false)), Some("0123abcd".into())).unwrap_err();
        assert!(err.contains("luo_init.systemd=1"), "{err}");
        for id in [None, Some("".into())] {
            let err = in_our_guest(Ok(guest_config(true)), id).unwrap_err();
            assert!(err.contains("INVOCATION_ID"), "{err}");
        }
    }
}
