//! The live update kexec: load the next kernel with `kexec_file_load(2)`, then reboot into it.
//!
//! A live update is a kexec reboot from `prepared` with kexec handover (KHO) on. The luo module
//! writes its handover record into KHO memory in its reboot notifier, in the same step that
//! moves `prepared` to `frozen`; the next kernel reads it and comes up `updated`. Nothing here
//! marks the image: an image loaded now and booted after a cancel is a plain reboot, because
//! the record written at the jump says `normal`. That is why a cancel should [`unload`] it: a
//! later `systemctl kexec` would otherwise quietly turn the abandoned live update into a plain
//! kexec reboot, and the workloads the live update was to keep would not survive it.
//!
//! [`load`] refuses unless the state is `prepared` and KHO is on, then opens the files and calls
//! `kexec_file_load`. [`reboot`] syncs the file systems, checks the state once more and calls
//! `reboot(LINUX_REBOOT_CMD_KEXEC)`; on success it does not return. `luoctl kexec` and the
//! demo's agent both go through these two functions. No kexec-tools is needed.
//!
//! ```no_run
//! use luo_user::StateFile;
//! use luo_user::kexec::{self, CommandLine, Request};
//!
//! let state = StateFile::open_default()?;
//! let line = CommandLine::reuse(&kexec::running_command_line()?, ["quiet"])?;
//! kexec::load(&state, &Request::new("/boot/vmlinuz-next", line))?;
//! let err = kexec::reboot(&state); // returns only when the reboot failed
//! eprintln!("{err}");
//! # Ok::<(), luo_user::Error>(())
//! ```

mod cmdline;
mod error;
mod image;
mod kho;
mod syscall;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use luo_state::State;

pub use cmdline::{COMMAND_LINE_MAX, CommandLine, CommandLineError, PROC_CMDLINE};
pub use error::KexecError;
pub use image::ELFCOREHDR_RESERVE;
pub use kho::DEBUGFS;

/// Where the kernel says whether an image is loaded for kexec: `1` or `0`.
pub const KEXEC_LOADED: &str = "/sys/kernel/kexec_loaded";

use crate::error::{Error, Result};
use crate::state_file::StateFile;

/// What to load: the kernel image, its initrd, its command line, and where debugfs is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The next kernel's image (a bzImage on x86).
    pub kernel: PathBuf,
    /// The next kernel's initrd, if any.
    pub initrd: Option<PathBuf>,
    /// The next kernel's command line.
    pub command_line: CommandLine,
    /// Where debugfs is mounted, to tell whether KHO is on (default [`DEBUGFS`]).
    pub debugfs: PathBuf,
}

impl Request {
    /// Loads `kernel` with `command_line`, no initrd, debugfs at [`DEBUGFS`].
    pub fn new(kernel: impl Into<PathBuf>, command_line: CommandLine) -> Self {
        Request {
            kernel: kernel.into(),
            initrd: None,
            command_line,
            debugfs: PathBuf::from(DEBUGFS),
        }
    }

    /// Adds an initrd.
    pub fn with_initrd(mut self, initrd: impl Into<PathBuf>) -> Self {
        self.initrd = Some(initrd.into());
        self
    }

    /// Looks for KHO's debugfs directory under `debugfs` instead of [`DEBUGFS`].
    pub fn with_debugfs(mut self, debugfs: impl Into<PathBuf>) -> Self {
        self.debugfs = debugfs.into();
        self
    }
}

/// The running kernel's command line, from [`PROC_CMDLINE`], its newline trimmed.
pub fn running_command_line() -> Result<String> {
    running_command_line_from(Path::new(PROC_CMDLINE))
}

/// The command line in `path` (a copy of `/proc/cmdline`), its newline trimmed.
pub fn running_command_line_from(path: &Path) -> Result<String> {
    cmdline::read_running(path)
        .map(|text| text.trim().to_owned())
        .map_err(|source| {
            KexecError::RunningCommandLine {
                path: path.to_path_buf(),
                source,
            }
            .into()
        })
}

/// Refuses unless `state` shows `prepared` ([`KexecError::NotPrepared`]).
fn require_prepared(state: &StateFile) -> Result<()> {
    match state.state()? {
        State::Prepared => Ok(()),
        other => Err(KexecError::NotPrepared {
            path: state.path().to_path_buf(),
            state: other,
        }
        .into()),
    }
}

/// Refuses unless KHO is on according to debugfs at `debugfs` ([`KexecError::KhoOff`], or
/// [`KexecError::KhoUnknown`] when debugfs is not mounted there).
fn require_kho(debugfs: &Path) -> Result<()> {
    match kho::status(debugfs) {
        kho::Kho::On => Ok(()),
        kho::Kho::Off => Err(KexecError::KhoOff {
            kho: kho::kho_dir(debugfs),
        }
        .into()),
        kho::Kho::Unknown => Err(KexecError::KhoUnknown {
            debugfs: debugfs.to_path_buf(),
        }
        .into()),
        kho::Kho::Unreadable(source) => Err(KexecError::KhoUnreadable {
            debugfs: debugfs.to_path_buf(),
            source,
        }
        .into()),
    }
}

/// Loads the next kernel of a live update: [`check`], then [`Checked::load`].
///
/// Nothing changes in the orchestrator; the state stays `prepared`. A second load replaces the
/// first image.
pub fn load(state: &StateFile, request: &Request) -> Result<()> {
    check(state, request)?.load()
}

/// Everything [`load`] checks before `kexec_file_load`: refuses unless the state is `prepared`
/// and KHO is on, opens the image (and initrd), and refuses a command line longer than the
/// image's header allows ([`CommandLineError::TooLong`]).
///
/// A caller that waits between the checks and the load (for the agent's hooks) learns of a
/// wrong path or KHO off before the wait, not after it.
pub fn check<'a>(state: &StateFile, request: &'a Request) -> Result<Checked<'a>> {
    require_prepared(state)?;
    require_kho(&request.debugfs)?;
    let kernel = open_image("the kernel", &request.kernel)?;
    let len = request.command_line.as_c_str().to_bytes_with_nul().len();
    let max = image::command_line_max(&kernel).map_err(|source| KexecError::Image {
        what: "the kernel",
        path: request.kernel.clone(),
        source,
    })?;
    if let Some(max) = max.filter(|&max| len > max) {
        return Err(CommandLineError::TooLong { len, max }.into());
    }
    let initrd = request
        .initrd
        .as_deref()
        .map(|path| open_image("the initrd", path))
        .transpose()?;
    Ok(Checked {
        request,
        kernel,
        initrd,
    })
}

/// A load that passed [`check`]: the image and initrd open, ready for `kexec_file_load`.
#[derive(Debug)]
pub struct Checked<'a> {
    request: &'a Request,
    kernel: File,
    initrd: Option<File>,
}

impl Checked<'_> {
    /// Calls `kexec_file_load` with the files opened by [`check`].
    pub fn load(self) -> Result<()> {
        let cmdline = self.request.command_line.as_c_str();
        syscall::kexec_file_load(
            self.kernel.as_fd(),
            self.initrd.as_ref().map(AsFd::as_fd),
            cmdline,
        )
        .map_err(|errno| {
            KexecError::Load {
                kernel: self.request.kernel.clone(),
                errno,
                cmdline_len: cmdline.to_bytes_with_nul().len(),
            }
            .into()
        })
    }
}

/// Reboots into the kernel [`load`] loaded: syncs the file systems, checks that the state is
/// still `prepared`, then calls `reboot(LINUX_REBOOT_CMD_KEXEC)`.
///
/// On success this does not return: the machine reboots, and the module's reboot notifier
/// moves the state from `prepared` to `frozen` and writes the handover record on the way. It
/// returns only with the reason it did not reboot: the state was no longer `prepared` (a
/// cancel came during the load or the sync; the image stays loaded), or the reboot call failed
/// ([`KexecError::Reboot`], with the state read afterwards).
pub fn reboot(state: &StateFile) -> Error {
    // Before the check, so a cancel during a long sync is seen.
    syscall::sync();
    match state.state() {
        Ok(State::Prepared) => {}
        Ok(other) => {
            return KexecError::StateChanged {
                path: state.path().to_path_buf(),
                state: other,
            }
            .into();
        }
        Err(err) => return err,
    }
    let errno = match syscall::reboot_kexec() {
        Err(errno) => errno,
        // `reboot` returns only on failure; a success that returns is none either.
        Ok(()) => rustix::io::Errno::INVAL,
    };
    KexecError::Reboot {
        errno,
        state: state.state().ok(),
    }
    .into()
}

/// Whether the kernel has an image loaded for kexec, as `loaded` (normally [`KEXEC_LOADED`])
/// says; `None` when it cannot be read (a kernel without kexec has no such file).
pub fn is_loaded(loaded: &Path) -> Option<bool> {
    match std::fs::read_to_string(loaded).ok()?.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// Unloads the kernel loaded for kexec, if any (`kexec_file_load` with `KEXEC_FILE_UNLOAD`, as
/// `kexec -u` does), so that no later kexec reboot boots it. Needs `CAP_SYS_BOOT`.
pub fn unload() -> Result<()> {
    syscall::kexec_file_unload().map_err(|errno| KexecError::Unload { errno }.into())
}

fn open_image(what: &'static str, path: &Path) -> Result<File> {
    File::open(path).map_err(|source| {
        KexecError::Image {
            what,
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}
