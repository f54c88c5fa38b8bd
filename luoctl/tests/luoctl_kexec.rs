//! `luoctl kexec` on the host: everything it checks before `kexec_file_load`: the command
//! line, the state, kexec handover, the files. The load and the reboot themselves run in the
//! guests of `cargo xtask test` (xtask/src/scenario/liveupdate.rs).

mod cli;

use std::fs;
use std::path::PathBuf;

use assert_cmd::Command;
use cli::{luoctl, write_state};
use luo_user::State;
use predicates::prelude::*;
use tempfile::TempDir;

/// A state file, a stand-in for debugfs (with `kho/` when KHO is on), a running command line
/// and a kernel image, in one temporary directory.
struct Setup {
    dir: TempDir,
    state: PathBuf,
    debugfs: PathBuf,
    cmdline: PathBuf,
    kernel: PathBuf,
}

impl Setup {
    fn new(state: State, kho: bool) -> Setup {
        let dir = TempDir::new().unwrap();
        let path = |name: &str| dir.path().join(name);
        let setup = Setup {
            state: path("state"),
            debugfs: path("debug"),
            cmdline: path("cmdline"),
            kernel: path("bzImage"),
            dir,
        };
        write_state(&setup.state, state);
        // A mounted debugfs is never empty.
        fs::create_dir_all(setup.debugfs.join("tracing")).unwrap();
        if kho {
            fs::create_dir(setup.debugfs.join("kho")).unwrap();
        }
        fs::write(&setup.cmdline, "console=ttyS0 ro\n").unwrap();
        fs::write(&setup.kernel, b"not really a kernel").unwrap();
        setup
    }

    /// `luoctl kexec` with this setup, always `--load-only`: a test never reboots the host;
    /// and `--no-wait`: no agent runs here (the agent's tests cover the wait).
    fn kexec(&self, args: &[&str]) -> Command {
        let mut cmd = luoctl();
        cmd.arg("--state-file")
            .arg(&self.state)
            .arg("kexec")
            .arg("--load-only")
            .arg("--no-wait")
            .arg("--debugfs")
            .arg(&self.debugfs)
            .arg("--cmdline-file")
            .arg(&self.cmdline)
            .args(args);
        cmd
    }
}

#[test]
fn kexec_in_normal_is_refused_with_exit_3_naming_the_state_and_prepare() {
    let setup = Setup::new(State::Normal, true);
    setup
        .kexec(&[])
        .arg(&setup.kernel)
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("'normal'"))
        .stderr(predicate::str::contains("luoctl prepare"))
        .stderr(predicate::str::contains(setup.state.to_string_lossy()));
}

#[test]
fn kexec_in_other_states_is_refused() {
    for state in [State::Frozen, State::Updated] {
        let setup = Setup::new(state, true);
        setup
            .kexec(&[])
            .arg(&setup.kernel)
            .assert()
            .code(3)
            .stderr(predicate::str::contains(format!("'{state}'")));
    }
}

#[test]
fn kexec_with_kho_off_is_refused_saying_how_to_turn_it_on() {
    let setup = Setup::new(State::Prepared, false);
    setup
        .kexec(&[])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("KHO"))
        .stderr(predicate::str::contains("kho=on"));
}

#[test]
fn kexec_without_debugfs_says_it_cannot_tell_and_how_to_mount_it() {
    let setup = Setup::new(State::Prepared, false);
    let unmounted = setup.dir.path().join("unmounted");
    fs::create_dir(&unmounted).unwrap();
    luoctl()
        .arg("--state-file")
        .arg(&setup.state)
        .args(["kexec", "--load-only", "--no-wait", "--debugfs"])
        .arg(&unmounted)
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot tell whether kexec handover",
        ))
        .stderr(predicate::str::contains(format!(
            "mount -t debugfs none {}",
            unmounted.display()
        )));
}

#[test]
fn a_command_line_longer_than_2048_bytes_is_refused_before_anything_else() {
    // Even in `normal` and with KHO off: the length is checked first.
    let setup = Setup::new(State::Normal, false);
    let long = "x".repeat(2048);
    setup
        .kexec(&["--append", &long])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2049 bytes"))
        .stderr(predicate::str::contains("2048"));
}

#[test]
fn the_running_command_line_counts_toward_the_limit() {
    let setup = Setup::new(State::Prepared, true);
    fs::write(&setup.cmdline, format!("{}\n", "y".repeat(2000))).unwrap();
    setup
        .kexec(&["--reuse-cmdline", "--append", &"z".repeat(47)])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2049 bytes"))
        .stderr(predicate::str::contains("--reuse-cmdline"));
}

#[test]
fn a_missing_kernel_is_named_after_the_refusals_pass() {
    let setup = Setup::new(State::Prepared, true);
    let missing = setup.dir.path().join("no-such-bzImage");
    setup
        .kexec(&[])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(missing.to_string_lossy()))
        .stderr(predicate::str::contains("No such file"));
}

#[test]
fn a_missing_initrd_is_named() {
    let setup = Setup::new(State::Prepared, true);
    let missing = setup.dir.path().join("no-such-initrd");
    setup
        .kexec(&["--initrd"])
        .arg(&missing)
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the initrd"))
        .stderr(predicate::str::contains(missing.to_string_lossy()));
}

#[test]
fn an_unreadable_running_command_line_is_named() {
    let setup = Setup::new(State::Prepared, true);
    fs::remove_file(&setup.cmdline).unwrap();
    setup
        .kexec(&["--reuse-cmdline"])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(setup.cmdline.to_string_lossy()));
}

#[test]
fn append_values_may_start_with_a_hyphen() {
    let setup = Setup::new(State::Normal, true);
    // Parsed as a value, then refused for the state: not a usage error.
    setup
        .kexec(&["--append", "-- init-arg"])
        .arg(&setup.kernel)
        .assert()
        .code(3);
}

/// The start of an x86 bzImage: the setup header with the boot protocol `version` and
/// `cmdline_size` (Documentation/arch/x86/boot.rst), and nothing a kernel would load.
fn bzimage_header(version: u16, cmdline_size: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; 0x1000];
    bytes[0x202..0x206].copy_from_slice(b"HdrS");
    bytes[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    bytes[0x238..0x23c].copy_from_slice(&cmdline_size.to_le_bytes());
    bytes
}

#[test]
fn a_command_line_longer_than_the_images_cmdline_size_allows_is_refused_with_both_numbers() {
    let setup = Setup::new(State::Prepared, true);
    fs::write(&setup.kernel, bzimage_header(0x020f, 1000)).unwrap();
    // 980 bytes and the NUL, plus the 30 kexec keeps for elfcorehdr=, is 1011 > 1000.
    let line = "x".repeat(980);
    setup
        .kexec(&["--append", &line])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the command line is 981 bytes with its terminating NUL, more than the 970",
        ))
        .stderr(predicate::str::contains("cannot load").not());
}

#[test]
fn a_command_line_within_the_images_cmdline_size_goes_on_to_the_load() {
    let setup = Setup::new(State::Prepared, true);
    fs::write(&setup.kernel, bzimage_header(0x020f, 1000)).unwrap();
    // 969 bytes and the NUL plus 30 is exactly 1000: the kernel takes it, so must we.
    let line = "x".repeat(969);
    setup
        .kexec(&["--append", &line])
        .arg(&setup.kernel)
        .assert()
        // The crafted image is no kernel: the load itself fails, or is not allowed here.
        .stderr(predicate::str::contains("cannot load"))
        .stderr(predicate::str::contains("more than the").not());
}

#[test]
fn reuse_cmdline_drops_the_boot_loaders_boot_image_word() {
    let setup = Setup::new(State::Prepared, true);
    fs::write(
        &setup.cmdline,
        "BOOT_IMAGE=/boot/vmlinuz-6.1 console=ttyS0 ro\n",
    )
    .unwrap();
    // The line as it goes to the kernel shows in the refusal of a too long one.
    let out = setup
        .kexec(&["--reuse-cmdline", "--append", &"y".repeat(2040)])
        .arg(&setup.kernel)
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    // "console=ttyS0 ro " is 17 bytes, the NUL 1: 2058; with BOOT_IMAGE= it would be 2087.
    assert!(stderr.contains("is 2058 bytes"), "{stderr}");
}

#[test]
fn a_debugfs_this_user_cannot_read_is_not_called_kho_off() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let setup = Setup::new(State::Prepared, true);
    // debugfs is root's alone (0700); the rest is readable by anyone, as in /sys.
    for (path, mode) in [
        (setup.dir.path(), 0o755),
        (setup.state.as_path(), 0o644),
        (setup.debugfs.as_path(), 0o700),
    ] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut command = cli::luoctl_copy_in(setup.dir.path());
    command
        .arg("kexec")
        .arg("--state-file")
        .arg(&setup.state)
        .arg("--load-only")
        .arg("--no-wait")
        .arg("--debugfs")
        .arg(&setup.debugfs)
        .arg(&setup.kernel)
        .current_dir("/")
        .uid(65534)
        .gid(65534);
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot tell whether kexec handover"),
        "{stderr}"
    );
    assert!(stderr.contains("run this as root"), "{stderr}");
    assert!(!stderr.contains("is off"), "{stderr}");
}

#[test]
fn a_missing_kernel_is_named_before_any_wait_for_the_agent() {
    let setup = Setup::new(State::Prepared, true);
    let missing = setup.dir.path().join("no-such-bzImage");
    // No --no-wait and no agent: the check of the image comes first, so the error is the
    // image's, not "no agent listens".
    luoctl()
        .arg("--state-file")
        .arg(&setup.state)
        .args(["kexec", "--load-only", "--debugfs"])
        .arg(&setup.debugfs)
        .arg("--cmdline-file")
        .arg(&setup.cmdline)
        .arg("--socket")
        .arg(setup.dir.path().join("agent.sock"))
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(missing.to_string_lossy()))
        .stderr(predicate::str::contains("no agent").not());
}
