//! The live update kexec: load the next kernel with the handover marker, then reboot into it.
//!
//! A live update is a kexec reboot from `prepared`. [`load`] checks the state, builds the next
//! kernel's command line from the running one with [`handover::next_command_line_with`]
//! (old marker stripped, `luo.handover=g+1` appended) and runs
//! `kexec -l KERNEL --command-line=CMDLINE [--initrd=FILE]`. [`execute`] checks the state again
//! and runs `kexec -e`: on success it does not return, because the machine reboots (the
//! module's reboot notifier moves `prepared` to `frozen` first). If `kexec -e` returns, the
//! error carries kexec's message and the state read afterwards.
//!
//! `luoctl kexec` and the example agent both go through these two functions.
//!
//! ```no_run
//! use luo_user::StateFile;
//! use luo_user::kexec::{self, Request};
//!
//! let state = StateFile::open_default()?;
//! let loaded = kexec::load(&state, &Request::new("/boot/vmlinuz"))?;
//! eprintln!("kexec into {}, live update generation {}", loaded.kernel.display(), loaded.generation);
//! let err = kexec::execute(&state, &loaded); // returns only when the reboot failed
//! eprintln!("{err}");
//! # Ok::<(), luo_user::Error>(())
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use luo_state::State;

use crate::error::{Error, Result};
use crate::handover::{self, HandoverError};
use crate::state_file::StateFile;

/// The kexec program run when no other is given (from kexec-tools, found through `PATH`).
pub const DEFAULT_PROGRAM: &str = "kexec";

/// A live update kexec refused or failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KexecError {
    /// The state is not `prepared`, so this would not be a live update.
    #[error(
        "{path} says the state is '{state}', not 'prepared': a live update kexec starts from 'prepared'; {}",
        not_prepared_hint(*.state)
    )]
    NotPrepared {
        /// The state attribute read.
        path: PathBuf,
        /// The state it showed.
        state: State,
    },

    /// The words to append are not allowed.
    #[error("cannot append to the command line: {source}")]
    Append {
        /// Why.
        source: HandoverError,
    },

    /// The kernel image or the initrd cannot be read.
    #[error("cannot use {what} {path}: {source}; give the path of a readable file")]
    Image {
        /// `"the kernel"` or `"the initrd"`.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// The kexec program is not installed.
    #[error(
        "cannot run {}: not found; install kexec-tools (apt-get install kexec-tools) or give its path with --kexec-bin",
        .program.display()
    )]
    Missing {
        /// The program that was looked for.
        program: PathBuf,
    },

    /// The kexec program could not be started for another reason.
    #[error("cannot run {}: {source}; check --kexec-bin", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// `kexec -l` failed: the next kernel is not loaded and nothing changed.
    #[error(
        "{} -l {} failed ({status}){}; the next kernel is not loaded and the state is unchanged",
        .program.display(), .kernel.display(), detail(.stderr)
    )]
    Load {
        /// The program.
        program: PathBuf,
        /// The kernel image.
        kernel: PathBuf,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },

    /// `kexec -e` returned: the machine did not reboot.
    #[error(
        "{} -e returned ({status}) instead of rebooting{}; {}",
        .program.display(), detail(.stderr), after_failed_reboot(*.state)
    )]
    Execute {
        /// The program.
        program: PathBuf,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
        /// The state read after it returned, if it could be read.
        state: Option<State>,
    },

    /// `kexec -u` failed: a loaded image may still be there.
    #[error(
        "{} -u failed ({status}){}; a kernel loaded for the live update may still be loaded: run 'kexec -u' before any plain kexec",
        .program.display(), detail(.stderr)
    )]
    Unload {
        /// The program.
        program: PathBuf,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
}

/// What to do when the state is not `prepared`, as the end of a sentence.
fn not_prepared_hint(state: State) -> &'static str {
    match state {
        State::Normal => {
            "run 'luoctl prepare' first (and let the agents save their work), then run this again"
        }
        State::Frozen => {
            "a kexec reboot is already under way; if it failed, send cancel ('luoctl cancel'), then 'luoctl prepare' again"
        }
        State::Updated => {
            "this kernel came from a live update that is not finished: restore, send finish ('luoctl finish'), then 'luoctl prepare'"
        }
        State::Prepared | State::Undefined => {
            "wait for the orchestrator to initialise, then run 'luoctl prepare' first"
        }
    }
}

/// What the state says after `kexec -e` returned, as the end of a sentence.
fn after_failed_reboot(state: Option<State>) -> String {
    match state {
        Some(State::Frozen) => "the state is now 'frozen' and stays so: send cancel ('luoctl cancel') to go back to 'normal'".into(),
        Some(State::Normal) => "the state is now 'normal': the kernel refused the freeze or the update was cancelled; run 'luoctl prepare' to try again".into(),
        Some(State::Prepared) => "the state is still 'prepared': the reboot did not start; fix the cause and run it again, or send cancel ('luoctl cancel')".into(),
        Some(state) => format!("the state is now '{state}'"),
        None => "the state could not be read".into(),
    }
}

/// `: message` from a program's stderr, or nothing when it wrote none.
fn detail(stderr: &str) -> String {
    let trimmed = stderr.trim();
    let mut out = String::new();
    if !trimmed.is_empty() {
        let _ = write!(out, ": {trimmed}");
    }
    out
}

/// What to load: the kernel, its initrd, words to add to the command line, and where the
/// programs and the running command line are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The kexec program (default [`DEFAULT_PROGRAM`], found through `PATH`).
    pub program: PathBuf,
    /// The next kernel's image (a bzImage on x86).
    pub kernel: PathBuf,
    /// The next kernel's initrd, if any.
    pub initrd: Option<PathBuf>,
    /// Words added to the kernel's parameters, before the marker (like `kexec --append`).
    pub append: String,
    /// The running kernel's command line (default [`handover::PROC_CMDLINE`]).
    pub cmdline_file: PathBuf,
}

impl Request {
    /// Loads `kernel` with the running kernel's command line, no initrd, through `kexec`.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        Request {
            program: PathBuf::from(DEFAULT_PROGRAM),
            kernel: kernel.into(),
            initrd: None,
            append: String::new(),
            cmdline_file: PathBuf::from(handover::PROC_CMDLINE),
        }
    }
}

/// A next kernel loaded by [`load`], ready for [`execute`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The kexec program that loaded it.
    pub program: PathBuf,
    /// The kernel image.
    pub kernel: PathBuf,
    /// The command line it will boot with (ending in `luo.handover=GENERATION`).
    pub command_line: String,
    /// The live update generation it will be.
    pub generation: u64,
    /// What `kexec -l` wrote to stderr although it succeeded (warnings), if anything.
    pub warnings: String,
}

/// The arguments of `kexec -l`: `-l KERNEL --command-line=CMDLINE [--initrd=FILE]`.
pub fn load_args(kernel: &Path, command_line: &str, initrd: Option<&Path>) -> Vec<OsString> {
    let mut args = vec![OsString::from("-l"), kernel.as_os_str().to_owned()];
    args.push(format!("--command-line={command_line}").into());
    if let Some(initrd) = initrd {
        let mut arg = OsString::from("--initrd=");
        arg.push(initrd);
        args.push(arg);
    }
    args
}

/// Refuses unless `state` shows `prepared` ([`KexecError::NotPrepared`]).
pub fn require_prepared(state: &StateFile) -> Result<()> {
    match state.state()? {
        State::Prepared => Ok(()),
        other => Err(KexecError::NotPrepared {
            path: state.path().to_path_buf(),
            state: other,
        }
        .into()),
    }
}

/// Loads the next kernel of a live update: checks that the state is `prepared`, builds its
/// command line from the running one and runs `kexec -l`.
///
/// Nothing changes in the orchestrator; the state stays `prepared`.
pub fn load(state: &StateFile, request: &Request) -> Result<Loaded> {
    require_prepared(state)?;
    let running = handover::read_command_line(&request.cmdline_file)?;
    let (command_line, generation) = handover::next_command_line_with(&running, &request.append)
        .map_err(|source| match source {
            HandoverError::Reserved { .. } => Error::from(KexecError::Append { source }),
            source => Error::Handover {
                path: request.cmdline_file.clone(),
                source,
            },
        })?;
    readable("the kernel", &request.kernel)?;
    if let Some(initrd) = &request.initrd {
        readable("the initrd", initrd)?;
    }
    let args = load_args(&request.kernel, &command_line, request.initrd.as_deref());
    let output = run(&request.program, &args)?;
    if !output.status.success() {
        return Err(KexecError::Load {
            program: request.program.clone(),
            kernel: request.kernel.clone(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
        .into());
    }
    Ok(Loaded {
        program: request.program.clone(),
        kernel: request.kernel.clone(),
        command_line,
        generation,
        warnings: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Reboots into the kernel [`load`] loaded: checks again that the state is `prepared`, then
/// runs `kexec -e`.
///
/// On success this does not return: the machine reboots, and the module's reboot notifier
/// moves the state from `prepared` to `frozen` on the way. It returns only with the reason it
/// failed: the state was no longer `prepared`, kexec could not be run, or `kexec -e` returned
/// ([`KexecError::Execute`], with kexec's message and the state read afterwards).
///
/// Whatever failed, the loaded image is unloaded (`kexec -u`) before this returns: it carries
/// the handover marker, and a later plain kexec into it would start the next kernel in
/// `updated` although nothing froze.
pub fn execute(state: &StateFile, loaded: &Loaded) -> Error {
    let failure = match require_prepared(state) {
        Err(err) => err,
        Ok(()) => match run(&loaded.program, &[OsString::from("-e")]) {
            Err(err) => err,
            Ok(output) => KexecError::Execute {
                program: loaded.program.clone(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                state: state.state().ok(),
            }
            .into(),
        },
    };
    // Best effort: the error that matters is the one above.
    let _ = unload(&loaded.program);
    failure
}

/// Unloads any kernel loaded for kexec (`kexec -u`), so that an abandoned live update's image,
/// marker included, cannot be booted later.
pub fn unload(program: &Path) -> Result<()> {
    let output = run(program, &[OsString::from("-u")])?;
    if output.status.success() {
        Ok(())
    } else {
        Err(KexecError::Unload {
            program: program.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
        .into())
    }
}

fn readable(what: &'static str, path: &Path) -> Result<()> {
    std::fs::File::open(path).map(drop).map_err(|source| {
        KexecError::Image {
            what,
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

/// Runs `program` with `args`, its stdin empty, its stdout discarded and its stderr captured.
fn run(program: &Path, args: &[OsString]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| {
            let program = program.to_path_buf();
            if source.kind() == io::ErrorKind::NotFound {
                KexecError::Missing { program }
            } else {
                KexecError::Spawn { program, source }
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_args_are_kexec_tools_options() {
        let args = load_args(
            Path::new("/boot/bzImage"),
            "ro luo.handover=1",
            Some(Path::new("/boot/initrd.img")),
        );
        assert_eq!(
            args,
            [
                "-l",
                "/boot/bzImage",
                "--command-line=ro luo.handover=1",
                "--initrd=/boot/initrd.img"
            ]
        );
        assert_eq!(load_args(Path::new("k"), "", None).len(), 3);
    }

    #[test]
    fn not_prepared_names_the_state_and_what_to_do() {
        let err = KexecError::NotPrepared {
            path: PathBuf::from("/sys/kernel/liveupdate/state"),
            state: State::Normal,
        };
        let text = err.to_string();
        assert!(text.contains("'normal'"), "{text}");
        assert!(text.contains("luoctl prepare"), "{text}");
    }

    #[test]
    fn a_missing_kexec_names_the_package() {
        let err: Error = run(Path::new("/nonexistent/kexec"), &[]).unwrap_err();
        assert!(err.to_string().contains("kexec-tools"), "{err}");
    }

    #[test]
    fn a_failed_reboot_in_frozen_says_to_cancel() {
        assert!(after_failed_reboot(Some(State::Frozen)).contains("luoctl cancel"));
    }
}
