//! The virtio ports the host reads: found by the name QEMU gave them.
//!
//! The kernel numbers ports (`/dev/vport1p1`) in probe order, and learns their names from the
//! host through a work queue after the device probed, so the init looks them up by name in
//! sysfs and waits a little for the name to arrive (udev does the same for
//! `/dev/virtio-ports/NAME`; this guest has no udev, which is what makes it boot fast).

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the kernel lists the ports, one directory per port with its `name`.
const PORTS: &str = "/sys/class/virtio-ports";
/// How long a port's name may take to arrive; it is there within milliseconds of boot.
const WAIT: Duration = Duration::from_secs(10);

/// Opens the port named `name` for writing, waiting up to [`WAIT`] for it to appear.
pub fn open(name: &str) -> Result<File, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(device) = find(name) {
            let path = Path::new("/dev").join(&device);
            return OpenOptions::new().write(true).open(&path).map_err(|err| {
                format!("cannot open the port {name} at {}: {err}", path.display())
            });
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no virtio port named {name} after {WAIT:?} (ports seen: {}); QEMU needs \
                 -device virtserialport,name={name}",
                seen().join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The device name (`vport1p1`) of the port called `name`, if it is there yet.
fn find(name: &str) -> Option<String> {
    std::fs::read_dir(PORTS).ok()?.flatten().find_map(|entry| {
        let port_name = std::fs::read_to_string(entry.path().join("name")).ok()?;
        (port_name.trim_end() == name).then(|| entry.file_name().to_string_lossy().into_owned())
    })
}

/// Every port with its name, for the error message.
fn seen() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(PORTS) else {
        return vec![format!("{PORTS} is missing")];
    };
    entries
        .flatten()
        .map(|entry| {
            let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            format!(
                "{}={}",
                entry.file_name().to_string_lossy(),
                name.trim_end()
            )
        })
        .collect()
}
