//! Test 1: the directory, the file, its mode, owner and content in each state; writes refused.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use luo_state::{Event, State};
use luo_sysfs_abi::path::{DEVICE_MODE, DEVICE_PATH, STATE_MODE, STATE_PATH, SYSFS_DIR};

use crate::{Outcome, dev, ensure, module};

/// Runs the layout checks with the module at `ko`.
pub fn run(ko: &Path) -> Outcome {
    module::load_with_selftest(ko)?;
    let dir = fs::metadata(SYSFS_DIR).map_err(|err| format!("{SYSFS_DIR}: {err}"))?;
    ensure!(dir.is_dir(), "{SYSFS_DIR} is not a directory");
    let names: Vec<String> = fs::read_dir(SYSFS_DIR)
        .map_err(|err| format!("{SYSFS_DIR}: {err}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    ensure!(
        names == ["state"],
        "{SYSFS_DIR} holds {names:?}, expected just [\"state\"]"
    );

    let meta = fs::metadata(STATE_PATH).map_err(|err| format!("{STATE_PATH}: {err}"))?;
    ensure!(meta.is_file(), "{STATE_PATH} is not a regular file");
    ensure!(
        meta.mode() & 0o7777 == u32::from(STATE_MODE),
        "{STATE_PATH} has mode {:o}, expected {STATE_MODE:o}",
        meta.mode() & 0o7777
    );
    ensure!(
        meta.uid() == 0 && meta.gid() == 0,
        "{STATE_PATH} is owned by {}:{}",
        meta.uid(),
        meta.gid()
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
    for (event, state) in [
        (Event::Prepare, State::Prepared),
        (Event::Freeze, State::Frozen),
        (Event::Cancel, State::Normal),
    ] {
        dev::trigger(&control, event)?;
        expect_content(state)?;
    }

    // kernfs refuses to open an attribute without `store` for writing, root included.
    match fs::OpenOptions::new().write(true).open(STATE_PATH) {
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {}
        Err(err) => {
            return Err(format!(
                "opening {STATE_PATH} for writing: expected EACCES, got {err}"
            ));
        }
        Ok(_) => return Err(format!("{STATE_PATH} opened for writing")),
    }
    expect_content(State::Normal)
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
