//! Test 1: the directory, its files, their modes, owners and content in each state (the
//! generation 0 on a cold boot, the transition count from 0 up by one per transition); writes
//! refused.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use luo_state::{Event, State};
use luo_sysfs_abi::path::{
    ATTRIBUTES, DEVICE_MODE, DEVICE_PATH, FLAVOUR_PATH, GENERATION_PATH, STATE_PATH, SYSFS_DIR,
    TRANSITIONS_PATH,
};

use crate::{Outcome, dev, ensure, module};

/// Runs the layout checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let dir = fs::metadata(SYSFS_DIR).map_err(|err| format!("{SYSFS_DIR}: {err}"))?;
    ensure!(dir.is_dir(), "{SYSFS_DIR} is not a directory");
    let mut names: Vec<String> = fs::read_dir(SYSFS_DIR)
        .map_err(|err| format!("{SYSFS_DIR}: {err}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut expected: Vec<String> = ATTRIBUTES
        .iter()
        .map(|attr| attr.name.to_string_lossy().into_owned())
        .collect();
    expected.sort();
    ensure!(
        names == expected,
        "{SYSFS_DIR} holds {names:?}, expected {expected:?}"
    );

    for attr in ATTRIBUTES {
        let path = attr.path;
        let meta = fs::metadata(path).map_err(|err| format!("{path}: {err}"))?;
        ensure!(meta.is_file(), "{path} is not a regular file");
        ensure!(
            meta.mode() & 0o7777 == u32::from(attr.mode),
            "{path} has mode {:o}, expected {:o}",
            meta.mode() & 0o7777,
            attr.mode
        );
        ensure!(
            meta.uid() == 0 && meta.gid() == 0,
            "{path} is owned by {}:{}",
            meta.uid(),
            meta.gid()
        );
    }
    // Every attribute reads whole: a `show` whose word does not fit its buffer fails the read.
    let flavour = fs::read(FLAVOUR_PATH).map_err(|err| format!("{FLAVOUR_PATH}: {err}"))?;
    ensure!(
        flavour == b"standalone\n",
        "{FLAVOUR_PATH} reads {:?} without liveupdate=on, expected \"standalone\\n\"",
        String::from_utf8_lossy(&flavour)
    );
    let generation =
        fs::read(GENERATION_PATH).map_err(|err| format!("{GENERATION_PATH}: {err}"))?;
    ensure!(
        generation == b"0\n",
        "{GENERATION_PATH} reads {:?} after a cold boot, expected \"0\\n\"",
        String::from_utf8_lossy(&generation)
    );

    let device = fs::metadata(DEVICE_PATH).map_err(|err| format!("{DEVICE_PATH}: {err}"))?;
    ensure!(
        device.file_type().is_char_device(),
        "{DEVICE_PATH} is not a character device"
    );
    ensure!(
        device.mode() & 0o7777 == u32::from(DEVICE_MODE),
        "{DEVICE_PATH} has mode {:o}, expected {DEVICE_MODE:o}",
        device.mode() & 0o7777
    );

    let control = dev::open().map_err(|err| format!("{DEVICE_PATH}: {err}"))?;
    expect_content(State::Normal)?;
    expect_transitions(0)?;
    for (count, (event, state)) in [
        (Event::Prepare, State::Prepared),
        (Event::Freeze, State::Frozen),
        (Event::Cancel, State::Normal),
    ]
    .into_iter()
    .enumerate()
    {
        dev::trigger(&control, event)?;
        expect_content(state)?;
        expect_transitions(count as u64 + 1)?;
    }
    // A refused event is no transition.
    ensure!(
        dev::set_event(&control, Event::Finish).is_err(),
        "finish was accepted in normal"
    );
    expect_transitions(3)?;

    // kernfs refuses to open an attribute without `store` for writing, root included.
    for path in ATTRIBUTES.map(|attr| attr.path) {
        match fs::OpenOptions::new().write(true).open(path) {
            Err(err) if err.kind() == ErrorKind::PermissionDenied => {}
            Err(err) => {
                return Err(format!(
                    "opening {path} for writing: expected EACCES, got {err}"
                ));
            }
            Ok(_) => return Err(format!("{path} opened for writing")),
        }
    }
    expect_content(State::Normal)
}

/// The counter's exact bytes: decimal and a newline.
fn expect_transitions(count: u64) -> Outcome {
    let bytes = fs::read(TRANSITIONS_PATH).map_err(|err| format!("{TRANSITIONS_PATH}: {err}"))?;
    let expected = format!("{count}\n");
    ensure!(
        bytes == expected.as_bytes(),
        "{TRANSITIONS_PATH} reads {:?}, expected {expected:?}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(())
}

fn expect_content(state: State) -> Outcome {
    let bytes = fs::read(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    let expected = format!("{}\n", state.word());
    ensure!(
        bytes == expected.as_bytes(),
        "{STATE_PATH} reads {:?}, expected {expected:?}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(())
}
