//! The guest machine: QEMU's arguments and the kernel command line.
//!
//! The machine has nothing the tests do not use (`-nodefaults`): one serial port for the
//! kernel console, a virtio-serial device with the two ports the init writes (the command's
//! standard output, and its exit status), the host's `/` over virtio-9p read-only as the root
//! file system, and one writable virtio-9p share per directory the command may write. The
//! flags for 9p are virtme-ng's (`security_model=none`: the guest's root acts with QEMU's
//! rights on the host; `multidevs=remap`: the host's `/` spans several file systems, whose
//! inode numbers would collide in one 9p export).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use luo_guest_init::protocol::{self, Config, NINEP_OPTIONS, STATUS_PORT, STDOUT_PORT};

use crate::run::Result;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// The root file system's 9p mount tag; `root=` names it.
const ROOT_TAG: &str = "/dev/root";

/// The longest command line we boot. x86 cuts it at 2048 bytes, and a kexec inside the guest
/// boots the next kernel with this one plus the words it appends (a test's marker, say):
/// leave them room.
const MAX_COMMAND_LINE: usize = 1536;

/// The kernel's parameters before the init's: the console on the first serial port with the
/// module's `pr_info` lines; `panic=-1` so a panic reboots, which `-no-reboot` turns into
/// QEMU's exit (a crashed guest ends at once rather than at the timeout); the root over 9p.
/// The rest are measured boot-time savings under TCG with lockdep (see `runner.rs`):
/// - `acpi=noirq`: PCI interrupt routing from the BIOS's table instead of ACPI's interrupt
///   links, whose evaluation kept each virtio-pci probe waiting 2 s (ACPI stays on for the
///   rest: the power-off that ends QEMU). `pci=noacpi` saves as much but leaves the PCI I/O
///   windows unknown, and the kernel then fails to assign the devices' I/O BARs;
/// - `pty.legacy_count=0`: no BSD ptys; registering 256 pairs of them took 0.5 to 1.4 s;
/// - `i8042.noaux i8042.nokbd`: no PS/2 keyboard or mouse probing (the mouse took 0.9 s).
const KERNEL_WORDS: &[&str] = &[
    "console=ttyS0",
    "loglevel=7",
    "panic=-1",
    "acpi=noirq",
    "pty.legacy_count=0",
    "i8042.noaux",
    "i8042.nokbd",
    "root=/dev/root",
    "rootfstype=9p",
];

/// How the root is mounted on top of [`NINEP_OPTIONS`]: read-only, with the page cache for
/// file contents (`cache=readahead`: programs and libraries load in large reads instead of
/// one 9p request per page; a file's cached pages are dropped when the host changes it).
/// Starting the init took 0.7 to 1.3 s without it, 0.35 to 0.65 s with it.
const ROOT_CACHE: &str = ",cache=readahead";

/// One guest: what to boot and where its exit status lands on the host.
pub struct Machine<'a> {
    /// The kernel image.
    pub bzimage: &'a Path,
    /// The kernel command line, from [`command_line`].
    pub command_line: &'a str,
    /// The init's configuration (its shares become 9p devices).
    pub config: &'a Config,
    /// The host file the status port writes.
    pub status_file: &'a Path,
}

/// The kernel command line: our parameters, the init and its configuration, then `append`.
pub fn command_line(init: &Path, config: &Config, append: &[String]) -> Result<String> {
    let init = init
        .to_str()
        .filter(|path| !path.chars().any(|c| c == '"' || c.is_control()))
        .ok_or_else(|| {
            format!(
                "the guests' init {} cannot be named on the kernel command line (double quotes, \
                 control characters or non-UTF-8 in the path); move the workspace",
                init.display()
            )
        })?;
    let mut words: Vec<String> = KERNEL_WORDS.iter().map(|w| (*w).to_owned()).collect();
    words.push(format!("rootflags={NINEP_OPTIONS}{ROOT_CACHE}"));
    words.push("ro".to_owned());
    words.push(protocol::word("init", init));
    words.extend(config.words().map_err(|err| err.to_string())?);
    words.extend(append.iter().cloned());
    let line = words.join(" ");
    if line.len() > MAX_COMMAND_LINE {
        return Err(format!(
            "the guest's kernel command line would be {} bytes, more than the {MAX_COMMAND_LINE} \
             this runner allows (x86 cuts it at 2048, and a kexec in the guest appends to it); \
             shorten the appended words or the paths:\n{line}",
            line.len()
        ));
    }
    Ok(line)
}

/// QEMU's arguments for `machine`.
pub fn args(machine: &Machine) -> Result<Vec<OsString>> {
    let mut args: Vec<OsString> = [
        // No KVM here. `pc` rather than `q35`: fewer devices, and it booted faster here;
        // `max`: every CPU feature TCG emulates, as virtme-ng picks without KVM.
        "-accel",
        "tcg",
        "-machine",
        "pc",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-m",
        "1G",
        "-nodefaults",
        "-no-user-config",
        // No display. Not `-nographic`, with which the BIOS writes its banner and
        // screen-clearing escapes to the serial console, glued to the kernel's first line.
        "-display",
        "none",
        // A kexec is no reset, so it stays in QEMU; a reboot (a panic's) ends it.
        "-no-reboot",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("-kernel".into());
    args.push(machine.bzimage.into());
    args.push("-append".into());
    args.push(machine.command_line.into());
    // The console: QEMU's stderr, which the runner reads as the console stream, with QEMU's
    // own messages. Not `-serial stdio`, which would read the runner's stdin.
    push_all(
        &mut args,
        &[
            "-chardev",
            "file,id=console,path=/proc/self/fd/2",
            "-serial",
            "chardev:console",
        ],
    );
    // The init's two ports. Not serial ports: a terminal as the command's stdout changes how
    // programs write (colours, columns, line endings), and the status needs a channel that
    // nothing else writes.
    push_all(
        &mut args,
        &[
            "-device",
            "virtio-serial-pci,id=ports",
            "-chardev",
            "file,id=stdout,path=/proc/self/fd/1",
            "-device",
            &format!("virtserialport,bus=ports.0,chardev=stdout,name={STDOUT_PORT}"),
            "-chardev",
            &format!("file,id=status,path={}", option_path(machine.status_file)?),
            "-device",
            &format!("virtserialport,bus=ports.0,chardev=status,name={STATUS_PORT}"),
        ],
    );
    share(&mut args, "root", Path::new("/"), ROOT_TAG, true)?;
    for (i, dir) in machine.config.shares.iter().enumerate() {
        share(
            &mut args,
            &format!("rw{i}"),
            &PathBuf::from(&dir.path),
            &dir.tag,
            false,
        )?;
    }
    Ok(args)
}

/// A host directory as a virtio-9p device.
fn share(args: &mut Vec<OsString>, id: &str, path: &Path, tag: &str, readonly: bool) -> Result {
    let readonly = if readonly { ",readonly=on" } else { "" };
    push_all(
        args,
        &[
            "-fsdev",
            &format!(
                "local,id={id},path={},security_model=none,multidevs=remap{readonly}",
                option_path(path)?
            ),
            "-device",
            &format!("virtio-9p-pci,fsdev={id},mount_tag={tag}"),
        ],
    );
    Ok(())
}

fn push_all(args: &mut Vec<OsString>, items: &[&str]) {
    args.extend(items.iter().map(OsString::from));
}

/// `path` as the value of a QEMU option: UTF-8, commas doubled (QEMU's escape).
fn option_path(path: &Path) -> Result<String> {
    path.to_str()
        .map(|text| text.replace(',', ",,"))
        .ok_or_else(|| {
            format!(
                "{} is not UTF-8 and cannot be passed to QEMU",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use luo_guest_init::protocol::Share;

    use super::*;

    fn config() -> Config {
        Config {
            script: "/root/.cache/luo/vm/script-7-0.sh".to_owned(),
            cwd: "/work/main".to_owned(),
            shares: vec![Share {
                tag: "luo_rw0".to_owned(),
                path: "/root/.cache/luo/live,update".to_owned(),
            }],
            keep: vec!["/root/.cache/luo/kernel/build-1".to_owned()],
            systemd: false,
        }
    }

    #[test]
    fn an_init_behind_a_space_is_quoted() {
        let init = Path::new("/tmp/a b/target/luo-guest-init");
        let line = command_line(init, &config(), &[]).unwrap();
        assert!(
            line.contains(" init=\"/tmp/a b/target/luo-guest-init\" "),
            "{line}"
        );
        assert_eq!(Config::from_cmdline(&line).unwrap(), config());
    }

    #[test]
    fn the_init_reads_its_configuration_back_from_the_command_line() {
        let init = Path::new("/work/main/target/debug/luo-guest-init");
        let line = command_line(init, &config(), &["luo_plain_kexec".to_owned()]).unwrap();
        assert!(line.contains(" init=/work/main/target/debug/luo-guest-init "));
        assert!(line.ends_with(" luo_plain_kexec"));
        assert_eq!(Config::from_cmdline(&line).unwrap(), config());
    }

    #[test]
    fn an_overlong_command_line_is_refused() {
        let init = Path::new("/work/main/target/debug/luo-guest-init");
        let err = command_line(init, &config(), &["x".repeat(MAX_COMMAND_LINE)]).unwrap_err();
        assert!(err.contains("more than the 1536"), "{err}");
        let quoted = Path::new("/a\"b/luo-guest-init");
        assert!(command_line(quoted, &config(), &[]).is_err());
    }

    #[test]
    fn shares_become_9p_devices_with_escaped_paths() {
        let config = config();
        let machine = Machine {
            bzimage: Path::new("/k/bzImage"),
            command_line: "console=ttyS0",
            config: &config,
            status_file: Path::new("/s"),
        };
        let args: Vec<String> = args(&machine)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let fsdevs: Vec<&String> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| *flag == "-fsdev")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(
            fsdevs,
            [
                "local,id=root,path=/,security_model=none,multidevs=remap,readonly=on",
                "local,id=rw0,path=/root/.cache/luo/live,,update,security_model=none,multidevs=remap",
            ]
        );
        assert!(args.contains(&"virtio-9p-pci,fsdev=rw0,mount_tag=luo_rw0".to_owned()));
    }
}
