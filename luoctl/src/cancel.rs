//! `luoctl cancel`: send cancel, then unload the kernel the live update loaded for kexec.
//!
//! An image loaded by `luoctl kexec --load-only` stays loaded after a cancel. Booting it later
//! is no live update (the handover record written at the jump says `normal`), but it is still
//! a kexec reboot: a `systemctl kexec` meant for something else, or left scheduled, would
//! quietly take the workloads down. So the cancel that abandons the live update also unloads.

use std::path::Path;

use luo_user::keeper::Client;
use luo_user::kexec;
use luo_user::{Control, Event};

use crate::cli::CancelArgs;
use crate::exit::Failure;

/// Sends cancel and prints the new state; then, unless `--keep-loaded`, unloads the kernel
/// loaded for kexec, if one is.
pub fn run(args: &CancelArgs) -> Result<(), Failure> {
    let state =
        if luo_user::flavour_beside(&args.state.state_file) == Some(luo_user::Flavour::Observer) {
            // Mainline has no cancel event: the agent closes the sessions it preserved.
            let sessions = Client::connect(&args.socket.socket)?.cancel()?;
            eprintln!(
                "luoctl: observer flavour: the agent closed {sessions} outgoing session(s); their \
             files are no longer preserved"
            );
            args.state.open()?.state()?
        } else {
            Control::open(&args.event.device.device)?.send(Event::Cancel)?
        };
    crate::print_state(state, args.event.json)?;
    if args.keep_loaded {
        return Ok(());
    }
    if unload_if_loaded(&args.kexec_loaded_file, kexec::unload)? {
        eprintln!(
            "luoctl: unloaded the kernel loaded for kexec, so no later kexec reboot boots it \
             (--keep-loaded keeps it)"
        );
    }
    Ok(())
}

/// Calls `unload` when `loaded` (normally `/sys/kernel/kexec_loaded`) says an image is
/// loaded; returns whether it did. A kernel without kexec has no such file, and nothing to
/// unload.
fn unload_if_loaded(
    loaded: &Path,
    unload: impl FnOnce() -> luo_user::Result<()>,
) -> luo_user::Result<bool> {
    if kexec::is_loaded(loaded) != Some(true) {
        return Ok(false);
    }
    unload().map(|()| true)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn with_loaded(content: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("kexec_loaded");
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn a_loaded_image_is_unloaded() {
        let (_dir, path) = with_loaded(Some("1\n"));
        let called = Cell::new(false);
        let unloaded = unload_if_loaded(&path, || {
            called.set(true);
            Ok(())
        });
        assert!(unloaded.unwrap());
        assert!(called.get());
    }

    #[test]
    fn nothing_loaded_or_no_kexec_leaves_it_alone() {
        for content in [Some("0\n"), None] {
            let (_dir, path) = with_loaded(content);
            let unloaded = unload_if_loaded(&path, || panic!("nothing to unload"));
            assert!(!unloaded.unwrap());
        }
    }

    #[test]
    fn a_failed_unload_is_an_error() {
        let (_dir, path) = with_loaded(Some("1\n"));
        let unloaded = unload_if_loaded(&path, || {
            Err(kexec::KexecError::Unload {
                errno: rustix::io::Errno::PERM,
            }
            .into())
        });
        let text = unloaded.unwrap_err().to_string();
        assert!(text.contains("kexec -u"), "{text}");
    }
}
