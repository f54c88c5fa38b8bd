//! luo's kernel log lines: the module prints each one through [`Line`], and the host's readers
//! (the demo's timeline, the guest tests) recognise them through `Message` of
//! `luo-sysfs-abi/src/log_reader.rs`, so a line is written and read from one definition.
//!
//! The module's lines carry the prefix `luo: ` ([`PREFIX`], the module's name, which the
//! kernel's print macros put first). Mainline's orchestrator (`kernel/liveupdate/`) logs with
//! the same prefix: its `pr_fmt` is `KBUILD_MODNAME ": "` and its object is `luo.o`. The
//! prefix therefore proves nothing; a line is luo's when the text after the prefix starts with
//! the opening of one of luo's lines ([`Kind::opening`]), which no line of mainline's starts
//! with. The module prints nothing but [`Line`]s, so the openings cover every line it prints.
//!
//! This file is the writing half, which the module compiles unchanged (through `#[path]`, and
//! as a copy in the tree); it uses nothing but `core` and reaches its types through `crate::`.
//! Reading lines back (finding them in a console or `dmesg` line, parsing their values) is the
//! host's alone and lives in `log_reader.rs`, which the module does not compile; the crate's
//! `log` module shows both halves as one.

use core::fmt;

use crate::{Flavour, State};

/// What the kernel puts before each of luo's lines, and before mainline's orchestrator's too.
pub const PREFIX: &str = "luo: ";

/// One of the module's log lines, without the prefix and the newline: `pr_info!("{}\n", line)`.
///
/// Values that only the kernel has (its `Error`, the record's refusal, the test hook's damage)
/// are borrowed as `dyn Debug` or `dyn Display`: this file cannot name the kernel's types.
#[derive(Clone, Copy)]
pub enum Line<'a> {
    /// A change of state.
    Switched(Switched),
    /// Init finished: the state is visible.
    Ready(Ready),
    /// The reboot notifier froze the state for the kexec jump.
    Froze(Froze),
    /// Init found that this boot is not a live update, and why.
    NotALiveUpdate(NotALiveUpdate<'a>),
    /// The load is refused, and why.
    NotLoading(NotLoading<'a>),
    /// KHO is on but refused luo's subtree; luo goes on as with `kho=off`.
    KhoSubtreeRefused {
        /// The subtree's name.
        subtree: &'a core::ffi::CStr,
        /// The kernel's error.
        error: &'a dyn fmt::Debug,
    },
    /// KHO is off: the next kernel cannot tell a live update from a plain kexec.
    KhoOff,
    /// The debugfs test hook exists, and the kernel is tainted for it.
    TestHookCreated,
    /// The test hook damaged the outgoing handover record.
    TestHookDamaged(&'a dyn fmt::Debug),
    /// The observer's derivation is inconsistent: a step takes away more files than counted.
    ObserverUncounted(&'a dyn fmt::Debug),
    /// The observer derived a change that its table does not allow.
    ObserverIllegal {
        /// The state before.
        from: State,
        /// The derived state.
        to: State,
    },
}

/// Which of luo's lines a line is: what a reader matches when the values do not matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// [`Line::Switched`] of the standalone flavour.
    Switched,
    /// [`Line::Switched`] of the observer flavour.
    ObserverSwitched,
    /// [`Line::Ready`].
    Ready,
    /// [`Line::Froze`].
    Froze,
    /// [`Line::NotALiveUpdate`].
    NotALiveUpdate,
    /// [`Line::NotLoading`].
    NotLoading,
    /// [`Line::KhoSubtreeRefused`].
    KhoSubtreeRefused,
    /// [`Line::KhoOff`].
    KhoOff,
    /// [`Line::TestHookCreated`].
    TestHookCreated,
    /// [`Line::TestHookDamaged`].
    TestHookDamaged,
    /// [`Line::ObserverUncounted`] and [`Line::ObserverIllegal`].
    ObserverInconsistent,
}

impl Kind {
    /// Every kind, longest opening first where one opening starts another, so the first match
    /// of the reader's `Kind::of` (in `log_reader.rs`) is the right one.
    pub const ALL: [Kind; 11] = [
        Kind::Switched,
        Kind::ObserverSwitched,
        Kind::Ready,
        Kind::Froze,
        Kind::NotALiveUpdate,
        Kind::NotLoading,
        Kind::KhoSubtreeRefused,
        Kind::KhoOff,
        Kind::TestHookCreated,
        Kind::TestHookDamaged,
        Kind::ObserverInconsistent,
    ];

    /// The fixed text every line of this kind starts with, after [`PREFIX`]. The lines' own
    /// `Display` writes it first, so the two cannot differ.
    pub const fn opening(self) -> &'static str {
        match self {
            Kind::Switched => "Switched from [",
            Kind::ObserverSwitched => "observer: Switched from [",
            Kind::Ready => "Ready in state [",
            Kind::Froze => "Froze for the kexec jump in ",
            Kind::NotALiveUpdate => "Not a live update: ",
            Kind::NotLoading => "not loading: ",
            Kind::KhoSubtreeRefused => "cannot register the KHO subtree ",
            Kind::KhoOff => "kexec handover (KHO) is off: ",
            Kind::TestHookCreated => "test hook liveupdate/luo_selftest created: ",
            Kind::TestHookDamaged => "Test hook: damaged the handover record (",
            Kind::ObserverInconsistent => "observer: ",
        }
    }
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Switched(switched) => switched.fmt(f),
            Line::Ready(ready) => ready.fmt(f),
            Line::Froze(froze) => froze.fmt(f),
            Line::NotALiveUpdate(why) => why.fmt(f),
            Line::NotLoading(why) => why.fmt(f),
            Line::KhoSubtreeRefused { subtree, error } => write!(
                f,
                "{}{subtree:?} ({error:?}): the next kernel cannot tell a live update from a \
                 plain kexec; going on as with kho=off",
                Kind::KhoSubtreeRefused.opening()
            ),
            Line::KhoOff => write!(
                f,
                "{}the next kernel cannot tell a live update from a plain kexec; boot with \
                 kho=on (or CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y)",
                Kind::KhoOff.opening()
            ),
            Line::TestHookCreated => write!(
                f,
                "{}it freezes without a kexec and damages the handover record; tainting the \
                 kernel (TAINT_TEST)",
                Kind::TestHookCreated.opening()
            ),
            Line::TestHookDamaged(damage) => {
                write!(f, "{}{damage:?})", Kind::TestHookDamaged.opening())
            }
            Line::ObserverUncounted(step) => write!(
                f,
                "{}{step:?} takes away more files than were counted",
                Kind::ObserverInconsistent.opening()
            ),
            Line::ObserverIllegal { from, to } => write!(
                f,
                "{}derived [{from}] -> [{to}], which its table does not allow",
                Kind::ObserverInconsistent.opening()
            ),
        }
    }
}

/// `Switched from [FROM] to [TO]`, after `observer: ` in the observer flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switched {
    /// Whose change it is: luo's own state machine, or derived from mainline's sessions.
    pub flavour: Flavour,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
}

impl Switched {
    /// Which kind of line reports this change.
    pub(crate) fn kind(&self) -> Kind {
        match self.flavour {
            Flavour::Standalone => Kind::Switched,
            Flavour::Observer => Kind::ObserverSwitched,
        }
    }
}

impl fmt::Display for Switched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}] to [{}]",
            self.kind().opening(),
            self.from,
            self.to
        )
    }
}

/// `Ready in state [STATE] (live update generation N) in T us`: init is done, the state
/// visible, `T` microseconds after init started (luo's share of a live update's arrival).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The flavour that runs: the observer's line says that it observes mainline's sessions.
    pub flavour: Flavour,
    /// The state luo came up in.
    pub state: State,
    /// The live-update generation.
    pub generation: u64,
    /// From init to the state visible, in microseconds (the kernel's `Delta` gives an `i64`).
    pub init_us: i64,
}

/// How the ready line names the observer flavour.
pub(crate) const OBSERVING: &str = ", observing mainline's sessions";

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let observing = match self.flavour {
            Flavour::Standalone => "",
            Flavour::Observer => OBSERVING,
        };
        write!(
            f,
            "{}{}] (live update generation {}{observing}) in {} us",
            Kind::Ready.opening(),
            self.state,
            self.generation,
            self.init_us
        )
    }
}

/// `Froze for the kexec jump in T us`: the reboot notifier's freeze took `T` microseconds
/// (luo's share of the blackout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Froze {
    /// The freeze, in microseconds (the kernel's `Delta` gives an `i64`).
    pub micros: i64,
}

impl fmt::Display for Froze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} us", Kind::Froze.opening(), self.micros)
    }
}

/// Why init found that this boot is not a live update.
#[derive(Clone, Copy)]
pub enum NotALiveUpdate<'a> {
    /// No KHO data at all.
    NoHandoverData,
    /// KHO data, but no record of luo's in it.
    NoRecord,
    /// The record could not be read: the kernel's error.
    Unreadable(&'a dyn fmt::Debug),
    /// The record was read and refused: why.
    Refused(&'a dyn fmt::Display),
    /// The record is sound but says a state other than `frozen`.
    NotFrozen(State),
}

impl fmt::Display for NotALiveUpdate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Kind::NotALiveUpdate.opening())?;
        match self {
            NotALiveUpdate::NoHandoverData => f.write_str(
                "no kexec handover data (a cold boot, a kexec_load, or KHO off in the previous \
                 kernel)",
            ),
            NotALiveUpdate::NoRecord => f.write_str(
                "the previous kernel left no luo record in its kexec handover (luo was not \
                 loaded there)",
            ),
            NotALiveUpdate::Unreadable(error) => {
                write!(f, "cannot read the handover record ({error:?})")
            }
            NotALiveUpdate::Refused(reason) => write!(f, "{REFUSED}{reason}"),
            NotALiveUpdate::NotFrozen(state) => write!(
                f,
                "the handover record says [{state}], not [frozen] (a plain kexec, or a live \
                 update already finished in this boot)"
            ),
        }
    }
}

/// How [`NotALiveUpdate::Refused`] introduces the reason.
pub const REFUSED: &str = "handover record refused: ";

/// Why the load is refused.
#[derive(Clone, Copy)]
pub enum NotLoading<'a> {
    /// `selftest=1` on a build without the test hook.
    NoTestHook,
    /// `/sys/kernel/liveupdate` exists already.
    SysfsExists,
    /// Another driver owns the misc device name `liveupdate`; `mainline` when the kernel has
    /// mainline's orchestrator, the most likely owner.
    MiscNameTaken {
        /// The kernel is built with `CONFIG_LIVEUPDATE`.
        mainline: bool,
    },
    /// A registration after the state was decided failed.
    CannotRegister {
        /// What could not be registered.
        what: &'a str,
        /// The kernel's error.
        error: &'a dyn fmt::Debug,
    },
}

impl fmt::Display for NotLoading<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Kind::NotLoading.opening())?;
        match self {
            NotLoading::NoTestHook => f.write_str(
                "selftest=1, but this build has no test hook (build with LUO_SELFTEST=y, or \
                 CONFIG_LIVEUPDATE_SYSFS_API_TEST=y in the tree)",
            ),
            NotLoading::SysfsExists => f.write_str(
                "/sys/kernel/liveupdate exists, so another orchestrator (or luo itself) is \
                 loaded; unload it first",
            ),
            NotLoading::MiscNameTaken { mainline } => {
                f.write_str(
                    "another driver owns the misc device name 'liveupdate' \
                     (/sys/devices/virtual/misc/liveupdate)",
                )?;
                f.write_str(if *mainline {
                    ", on this kernel most likely mainline's live update orchestrator \
                     (liveupdate=on); for luo's state beside it, build luo in \
                     (CONFIG_LIVEUPDATE_SYSFS_API=y), or boot without liveupdate=on"
                } else {
                    "; unload it first"
                })
            }
            NotLoading::CannotRegister { what, error } => {
                write!(f, "cannot register {what} ({error:?})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    /// Each line as the module printed it before it printed through [`Line`]: the format
    /// strings of `luo-kmod/src` then, joined where they were continued.
    #[test]
    fn the_lines_keep_the_bytes_the_module_printed_before() {
        let cases: [(Line<'_>, &str); 21] = [
            (
                Line::Switched(Switched {
                    flavour: Flavour::Observer,
                    from: State::Normal,
                    to: State::Prepared,
                }),
                "observer: Switched from [normal] to [prepared]",
            ),
            (
                Line::Ready(Ready {
                    flavour: Flavour::Observer,
                    state: State::Updated,
                    generation: 1,
                    init_us: 9,
                }),
                "Ready in state [updated] (live update generation 1, observing mainline's \
                 sessions) in 9 us",
            ),
            (
                Line::NotALiveUpdate(NotALiveUpdate::Refused(&"bad magic")),
                "Not a live update: handover record refused: bad magic",
            ),
            (
                Line::NotALiveUpdate(NotALiveUpdate::NotFrozen(State::Normal)),
                "Not a live update: the handover record says [normal], not [frozen] (a plain \
                 kexec, or a live update already finished in this boot)",
            ),
            (
                Line::NotLoading(NotLoading::MiscNameTaken { mainline: false }),
                "not loading: another driver owns the misc device name 'liveupdate' \
                 (/sys/devices/virtual/misc/liveupdate); unload it first",
            ),
            (
                Line::NotLoading(NotLoading::CannotRegister {
                    what: "/sys/kernel/liveupdate",
                    error: &Enomem,
                }),
                "not loading: cannot register /sys/kernel/liveupdate (ENOMEM)",
            ),
            (
                Line::KhoSubtreeRefused {
                    subtree: c"luo-v3-state",
                    error: &Enomem,
                },
                "cannot register the KHO subtree \"luo-v3-state\" (ENOMEM): the next kernel \
                 cannot tell a live update from a plain kexec; going on as with kho=off",
            ),
            (
                Line::ObserverUncounted(&Enomem),
                "observer: ENOMEM takes away more files than were counted",
            ),
            (
                Line::Switched(Switched {
                    flavour: Flavour::Standalone,
                    from: State::Prepared,
                    to: State::Frozen,
                }),
                "Switched from [prepared] to [frozen]",
            ),
            (
                Line::Ready(Ready {
                    flavour: Flavour::Standalone,
                    state: State::Normal,
                    generation: 0,
                    init_us: 412,
                }),
                "Ready in state [normal] (live update generation 0) in 412 us",
            ),
            (
                Line::Froze(Froze { micros: 37 }),
                "Froze for the kexec jump in 37 us",
            ),
            (
                Line::NotALiveUpdate(NotALiveUpdate::NoHandoverData),
                "Not a live update: no kexec handover data (a cold boot, a kexec_load, or KHO off \
                 in the previous kernel)",
            ),
            (
                Line::NotALiveUpdate(NotALiveUpdate::NoRecord),
                "Not a live update: the previous kernel left no luo record in its kexec \
                 handover (luo was not loaded there)",
            ),
            (
                Line::NotALiveUpdate(NotALiveUpdate::Unreadable(&Enomem)),
                "Not a live update: cannot read the handover record (ENOMEM)",
            ),
            (
                Line::NotLoading(NotLoading::NoTestHook),
                "not loading: selftest=1, but this build has no test hook (build with \
                 LUO_SELFTEST=y, or CONFIG_LIVEUPDATE_SYSFS_API_TEST=y in the tree)",
            ),
            (
                Line::NotLoading(NotLoading::SysfsExists),
                "not loading: /sys/kernel/liveupdate exists, so another orchestrator (or luo \
                 itself) is loaded; unload it first",
            ),
            (
                Line::NotLoading(NotLoading::MiscNameTaken { mainline: true }),
                "not loading: another driver owns the misc device name 'liveupdate' \
                 (/sys/devices/virtual/misc/liveupdate), on this kernel most likely mainline's \
                 live update orchestrator (liveupdate=on); for luo's state beside it, build luo \
                 in (CONFIG_LIVEUPDATE_SYSFS_API=y), or boot without liveupdate=on",
            ),
            (
                Line::KhoOff,
                "kexec handover (KHO) is off: the next kernel cannot tell a live update from a \
                 plain kexec; boot with kho=on (or CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y)",
            ),
            (
                Line::TestHookCreated,
                "test hook liveupdate/luo_selftest created: it freezes without a kexec and damages \
                 the handover record; tainting the kernel (TAINT_TEST)",
            ),
            (
                Line::TestHookDamaged(&Enomem),
                "Test hook: damaged the handover record (ENOMEM)",
            ),
            (
                Line::ObserverIllegal {
                    from: State::Normal,
                    to: State::Updated,
                },
                "observer: derived [normal] -> [updated], which its table does not allow",
            ),
        ];
        for (line, printed) in cases {
            assert_eq!(line.to_string(), printed);
        }
    }

    /// Debugs as the kernel's `Error` does, by name.
    struct Enomem;

    impl fmt::Debug for Enomem {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("ENOMEM")
        }
    }
}
