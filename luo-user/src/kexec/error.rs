//! Why a live update kexec was refused or failed, each case with what to do.

use std::io;
use std::path::PathBuf;

use luo_state::State;
use rustix::io::Errno;

use super::cmdline::{COMMAND_LINE_MAX, CommandLineError};

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

    /// Kexec handover is off, so the next kernel could not learn that it is a live update.
    #[error(
        "kexec handover (KHO) is off ({kho} does not exist): the next kernel would not know it \
         was live-updated; boot this kernel with kho=on on its command line (or build it with \
         CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y), then prepare again"
    )]
    KhoOff {
        /// The `kho` directory looked for in debugfs.
        kho: PathBuf,
    },

    /// debugfs is not mounted where it was looked for, so KHO's status cannot be told.
    #[error(
        "cannot tell whether kexec handover (KHO) is on: debugfs is not mounted at {debugfs}; \
         mount it (mount -t debugfs none {debugfs}) and run this again"
    )]
    KhoUnknown {
        /// Where debugfs was expected.
        debugfs: PathBuf,
    },

    /// debugfs cannot be read by this user (it is root's alone), so KHO's status cannot be
    /// told.
    #[error(
        "cannot tell whether kexec handover (KHO) is on: {debugfs} cannot be read ({source}); \
         debugfs is readable by root only: run this as root"
    )]
    KhoUnreadable {
        /// Where debugfs was looked at.
        debugfs: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },

    /// The running kernel's command line could not be read (for `--reuse-cmdline`).
    #[error("cannot read the running kernel's command line {path}: {source}")]
    RunningCommandLine {
        /// The path read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// The next kernel's command line is not acceptable.
    #[error(transparent)]
    CommandLine(#[from] CommandLineError),

    /// The kernel image or the initrd cannot be opened.
    #[error("cannot open {what} {path}: {source}; give the path of a readable file")]
    Image {
        /// `"the kernel"` or `"the initrd"`.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// `kexec_file_load(2)` failed: nothing is loaded and the state is unchanged.
    #[error(
        "cannot load {kernel} for kexec: {}: {}; nothing was loaded and the state is unchanged",
        io::Error::from(*.errno), load_hint(*.errno, *.cmdline_len)
    )]
    Load {
        /// The kernel image.
        kernel: PathBuf,
        /// The errno of `kexec_file_load`.
        errno: Errno,
        /// The command line's length, NUL included.
        cmdline_len: usize,
    },

    /// Unloading the kernel loaded for kexec failed: it stays loaded.
    #[error(
        "cannot unload the kernel loaded for kexec: {}{}; it stays loaded, and a kexec reboot \
         ('systemctl kexec') would boot it as a plain reboot: unload it as root ('kexec -u')",
        io::Error::from(*.errno), unload_hint(*.errno)
    )]
    Unload {
        /// The errno of `kexec_file_load` with `KEXEC_FILE_UNLOAD`.
        errno: Errno,
    },

    /// The state changed while the image was loading, so the reboot was not started.
    #[error(
        "{path} changed to '{state}' while the next kernel was loading, so it did not reboot; \
         the image stays loaded and a kexec reboot now would be a plain one (not a live update): \
         run 'luoctl prepare' and 'luoctl kexec' again for a live update"
    )]
    StateChanged {
        /// The state attribute read.
        path: PathBuf,
        /// The state it showed.
        state: State,
    },

    /// `reboot(LINUX_REBOOT_CMD_KEXEC)` returned: the machine did not reboot.
    #[error(
        "the kexec reboot failed: {}{}; {}",
        io::Error::from(*.errno), reboot_hint(*.errno), after_failed_reboot(*.state)
    )]
    Reboot {
        /// The errno of `reboot`.
        errno: Errno,
        /// The state read after it returned, if it could be read.
        state: Option<State>,
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

/// What a `kexec_file_load` errno means here and what to do, as the end of a sentence.
fn load_hint(errno: Errno, cmdline_len: usize) -> String {
    match errno {
        Errno::NOEXEC => "the file is not a kernel image this kernel can load: on x86 it must be \
             a bzImage built with CONFIG_RELOCATABLE=y (the kernel log says which check failed: \
             dmesg | tail)"
            .into(),
        Errno::PERM => "loading a kernel needs CAP_SYS_BOOT (run it as root), and \
             /proc/sys/kernel/kexec_load_disabled must be 0 (once set to 1 it stays so until a \
             reboot); kernel lockdown may also refuse unsigned images"
            .into(),
        Errno::BUSY => "another kexec load or reboot is under way; wait for it to end and \
             run this again"
            .into(),
        Errno::ADDRNOTAVAIL => "the image does not fit in kexec handover's scratch memory; \
             boot this kernel with more of it reserved (kho_scratch=, for example \
             kho_scratch=400%, or kho_scratch=LOW,GLOBAL,PER_NODE sizes such as 32M,1G,512M) and \
             run this again"
            .into(),
        Errno::INVAL | Errno::TOOBIG => format!(
            "the kernel refused the command line ({cmdline_len} bytes with its NUL, within \
             {COMMAND_LINE_MAX} and the image's cmdline_size) or the image; shorten \
             --append or drop --reuse-cmdline, and see dmesg | tail"
        ),
        Errno::NOMEM => "not enough memory to stage the image; free memory and try again".into(),
        Errno::NOSYS => "this kernel has no kexec_file_load (it needs CONFIG_KEXEC_FILE=y)".into(),
        Errno::KEYREJECTED | Errno::BADMSG | Errno::NODATA => "the image's signature was \
             refused (CONFIG_KEXEC_SIG); load a kernel signed with a trusted key"
            .into(),
        _ => "see the kernel log (dmesg | tail)".into(),
    }
}

/// What an unload's errno means here, as a clause.
fn unload_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::PERM => " (it needs CAP_SYS_BOOT)",
        Errno::BUSY => " (another kexec load is under way)",
        _ => "",
    }
}

/// What a `reboot` errno means here, as a clause.
fn reboot_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::INVAL => " (no kernel is loaded for kexec)",
        Errno::PERM => " (it needs CAP_SYS_BOOT: run it as root)",
        _ => "",
    }
}

/// What the state says after the kexec reboot returned, as the end of a sentence.
fn after_failed_reboot(state: Option<State>) -> String {
    match state {
        Some(State::Frozen) => "the state is now 'frozen' and stays so: send cancel ('luoctl cancel') to go back to 'normal'".into(),
        Some(State::Normal) => "the state is now 'normal': the freeze was refused or the update was cancelled; run 'luoctl prepare' to try again".into(),
        Some(State::Prepared) => "the state is still 'prepared': fix the cause and run it again, or send cancel ('luoctl cancel')".into(),
        Some(state) => format!("the state is now '{state}'"),
        None => "the state could not be read".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(errno: Errno) -> String {
        KexecError::Load {
            kernel: PathBuf::from("/boot/bzImage"),
            errno,
            cmdline_len: 100,
        }
        .to_string()
    }

    #[test]
    fn not_prepared_names_the_state_and_prepare() {
        let err = KexecError::NotPrepared {
            path: PathBuf::from("/sys/kernel/liveupdate/state"),
            state: State::Normal,
        };
        let text = err.to_string();
        assert!(
            text.contains("'normal'") && text.contains("luoctl prepare"),
            "{text}"
        );
    }

    #[test]
    fn enoexec_says_the_image_must_be_relocatable() {
        let text = load(Errno::NOEXEC);
        assert!(text.contains("/boot/bzImage"), "{text}");
        assert!(text.contains("CONFIG_RELOCATABLE"), "{text}");
    }

    #[test]
    fn eperm_names_cap_sys_boot_and_the_sysctl() {
        let text = load(Errno::PERM);
        assert!(text.contains("CAP_SYS_BOOT"), "{text}");
        assert!(text.contains("kexec_load_disabled"), "{text}");
    }

    #[test]
    fn ebusy_says_to_wait() {
        assert!(load(Errno::BUSY).contains("another kexec"));
    }

    #[test]
    fn eaddrnotavail_says_how_to_reserve_scratch_memory() {
        assert!(load(Errno::ADDRNOTAVAIL).contains("kho_scratch="));
    }

    #[test]
    fn einval_and_e2big_name_the_command_line_length() {
        for errno in [Errno::INVAL, Errno::TOOBIG] {
            let text = load(errno);
            assert!(
                text.contains("100 bytes") && text.contains("2048"),
                "{text}"
            );
        }
    }

    #[test]
    fn each_load_errno_has_its_own_advice() {
        let errnos = [
            Errno::NOEXEC,
            Errno::PERM,
            Errno::BUSY,
            Errno::ADDRNOTAVAIL,
            Errno::INVAL,
            Errno::NOMEM,
            Errno::NOSYS,
            Errno::KEYREJECTED,
        ];
        let hints: std::collections::HashSet<String> =
            errnos.iter().map(|e| load_hint(*e, 1)).collect();
        assert_eq!(hints.len(), errnos.len());
    }

    #[test]
    fn kho_off_says_how_to_turn_it_on() {
        let text = KexecError::KhoOff {
            kho: PathBuf::from("/sys/kernel/debug/kho"),
        }
        .to_string();
        assert!(text.contains("kho=on"), "{text}");
        assert!(
            text.contains("CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT"),
            "{text}"
        );
    }

    #[test]
    fn kho_unknown_says_how_to_mount_debugfs() {
        let text = KexecError::KhoUnknown {
            debugfs: PathBuf::from("/sys/kernel/debug"),
        }
        .to_string();
        assert!(
            text.contains("mount -t debugfs none /sys/kernel/debug"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_reboot_in_frozen_says_to_cancel() {
        let text = KexecError::Reboot {
            errno: Errno::INVAL,
            state: Some(State::Frozen),
        }
        .to_string();
        assert!(text.contains("no kernel is loaded"), "{text}");
        assert!(text.contains("luoctl cancel"), "{text}");
    }
}
