//! Test 3: every refusal answers its errno and leaves the state alone: events not allowed in
//! each state, FREEZE from userspace, bad sizes, non-zero tails, unknown commands, a second
//! opener, and an unprivileged user.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use luo_state::ioctl::{self, E2BIG, EINVAL, ENOTTY, GET_STATE, SET_EVENT};
use luo_state::{Event, State};
use luo_sysfs_abi::path::{DEVICE_PATH, STATE_PATH};

use crate::guest::assert_state;
use crate::guest::nobody::Program;
use crate::{Outcome, dev, ensure, module};

/// Runs the refusal checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let control = dev::open().map_err(|err| format!("opening the device: {err}"))?;
    refused_events(&control)?;
    bad_arguments(&control)?;
    unknown_commands(&control)?;
    second_opener(control)?;
    unprivileged_user()
}

/// Brings the module from `normal` to `state` (one of the three reachable ones).
fn drive_to(control: &File, state: State) -> Outcome {
    if state != State::Normal {
        dev::trigger(control, Event::Prepare)?;
    }
    if state == State::Frozen {
        dev::trigger(control, Event::Freeze)?;
    }
    assert_state(control, state, "setting up")
}

fn refused_events(control: &File) -> Outcome {
    for state in [State::Normal, State::Prepared, State::Frozen] {
        drive_to(control, state)?;
        for raw in (0..Event::ALL.len() as u32).chain([4, 7, u32::MAX]) {
            let Err(refusal) = ioctl::set_event(state, raw) else {
                continue;
            };
            let got = dev::set_event_raw(control, raw);
            ensure!(
                got == Err(refusal.errno()),
                "in '{state}', SET_EVENT {raw} answered {got:?}, expected errno {} ({refusal})",
                refusal.errno()
            );
            assert_state(
                control,
                state,
                &format!("after the refused SET_EVENT {raw} in '{state}'"),
            )?;
        }
        if state != State::Prepared {
            let got = dev::selftest_freeze();
            ensure!(
                got == Err(EINVAL),
                "hook freeze in '{state}' answered {got:?}, expected EINVAL"
            );
            assert_state(
                control,
                state,
                &format!("after the refused hook freeze in '{state}'"),
            )?;
        }
        if state != State::Normal {
            dev::trigger(control, Event::Cancel)?;
        }
    }
    Ok(())
}

fn bad_arguments(control: &File) -> Outcome {
    let mut buf = [0u8; 32];
    for (cmd, name) in [(SET_EVENT, "SET_EVENT"), (GET_STATE, "GET_STATE")] {
        for size in [0, 4, 7] {
            let got = dev::ioctl_with_buffer(control, cmd, size, &mut buf);
            ensure!(
                got == Err(EINVAL),
                "{name} with size {size} answered {got:?}, expected EINVAL"
            );
        }
    }
    // A larger struct from a newer caller: accepted when the tail is zero, E2BIG otherwise.
    buf = [0; 32];
    buf[4..8].copy_from_slice(&Event::Prepare.as_u32().to_ne_bytes());
    buf[20] = 1;
    let got = dev::ioctl_with_buffer(control, SET_EVENT, 32, &mut buf);
    ensure!(
        got == Err(E2BIG),
        "SET_EVENT with a non-zero tail answered {got:?}, expected E2BIG"
    );
    assert_state(control, State::Normal, "after the E2BIG SET_EVENT")?;
    buf[20] = 0;
    let got = dev::ioctl_with_buffer(control, SET_EVENT, 32, &mut buf);
    ensure!(
        got == Ok(()),
        "SET_EVENT with a zero tail answered {got:?}, expected success"
    );
    assert_state(
        control,
        State::Prepared,
        "after the SET_EVENT with a zero tail",
    )?;

    // Past a page the kernel refuses without scanning the tail.
    let mut big = vec![0u8; 8192];
    let got = dev::ioctl_with_buffer(control, SET_EVENT, 8192, &mut big);
    ensure!(
        got == Err(E2BIG),
        "SET_EVENT with size 8192 answered {got:?}, expected E2BIG"
    );

    buf = [0; 32];
    let got = dev::ioctl_with_buffer(control, GET_STATE, 32, &mut buf);
    let state = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    ensure!(got == Ok(()), "GET_STATE with size 32 answered {got:?}");
    ensure!(
        state == State::Prepared.as_u32(),
        "GET_STATE with size 32 wrote state {state}"
    );
    buf = [0; 32];
    buf[31] = 0xff;
    let got = dev::ioctl_with_buffer(control, GET_STATE, 32, &mut buf);
    ensure!(
        got == Err(E2BIG),
        "GET_STATE with a non-zero tail answered {got:?}, expected E2BIG"
    );
    dev::trigger(control, Event::Cancel)?;
    Ok(())
}

fn unknown_commands(control: &File) -> Outcome {
    let mut buf = [0u8; 32];
    // 0x00-0x02 and 0x05-0x06 are other patches' per-file commands; 0x5401 is TCGETS.
    for cmd in [
        ioctl::io(0x00),
        ioctl::io(0x01),
        ioctl::io(0x02),
        ioctl::io(0x05),
        ioctl::io(0x06),
        ioctl::io(0xff),
        0x5401,
    ] {
        let got = dev::ioctl_with_buffer(control, cmd, 8, &mut buf);
        ensure!(
            got == Err(ENOTTY),
            "command {cmd:#x} answered {got:?}, expected ENOTTY"
        );
    }
    assert_state(control, State::Normal, "after the unknown commands")
}

fn second_opener(control: File) -> Outcome {
    match dev::open() {
        Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {}
        Err(err) => {
            return Err(format!(
                "a second open of {DEVICE_PATH}: expected EBUSY, got {err}"
            ));
        }
        Ok(_) => return Err(format!("a second open of {DEVICE_PATH} succeeded")),
    }
    drop(control);
    let again = dev::open().map_err(|err| format!("reopening {DEVICE_PATH} after close: {err}"))?;
    drop(again);
    Ok(())
}

/// An unprivileged user can read the state but not open the device: the node's mode stops it
/// (`EACCES`), and so does the missing `CAP_SYS_BOOT` (`EPERM`) once the mode lets anyone in.
fn unprivileged_user() -> Outcome {
    probe_as_nobody("eacces")?;
    let set_mode = |mode: u32| {
        std::fs::set_permissions(DEVICE_PATH, std::fs::Permissions::from_mode(mode))
            .map_err(|err| format!("chmod {mode:o} {DEVICE_PATH}: {err}"))
    };
    set_mode(0o666)?;
    let widened = probe_as_nobody("eperm");
    set_mode(0o600)?;
    widened
}

fn probe_as_nobody(expect: &str) -> Outcome {
    let exe = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let out = Program::copy(&exe)?
        .command()
        .args(["unprivileged-probe", expect])
        .output()
        .map_err(|err| format!("running the probe as nobody: {err}"))?;
    ensure!(
        out.status.success(),
        "as nobody: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Runs as an unprivileged user: the state is readable, the device is not; its open fails with
/// `expect` (`eacces`: the node's mode; `eperm`: a mode that admits anyone, and no
/// `CAP_SYS_BOOT`).
pub fn unprivileged_probe(expect: &str) -> Outcome {
    let mut text = String::new();
    File::open(STATE_PATH)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|err| format!("an unprivileged user cannot read {STATE_PATH}: {err}"))?;
    ensure!(text == "normal\n", "an unprivileged user read {text:?}");
    let errno = match expect {
        "eacces" => libc::EACCES,
        "eperm" => libc::EPERM,
        other => return Err(format!("unprivileged-probe: unknown expectation '{other}'")),
    };
    match dev::open() {
        Err(err) if err.raw_os_error() == Some(errno) => Ok(()),
        Err(err) => Err(format!(
            "an unprivileged open of {DEVICE_PATH}: expected {}, got {err}",
            expect.to_uppercase()
        )),
        Ok(_) => Err(format!("an unprivileged user opened {DEVICE_PATH}")),
    }
}
