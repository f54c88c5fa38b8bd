// SPDX-License-Identifier: GPL-2.0

//! luo: the v3 Live Update Orchestrator's state machine and monitoring interface, as a module
//! (out of tree, or built in with `CONFIG_LIVEUPDATE_SYSFS_API`).
//!
//! It comes in two flavours, chosen at init:
//! - **standalone**: luo owns the v3 state machine, described below;
//! - **observer** (built in, with mainline's orchestrator on: `CONFIG_LIVEUPDATE` and
//!   `liveupdate=on`): mainline owns `/dev/liveupdate` and its sessions keep memory alive across
//!   the kexec; luo derives the state of that live update from what the sessions hold
//!   (`observed.rs`), shows it in the same `state` file with the same notifications, and shows
//!   mainline's live-update number as `generation`. It changes nothing.
//!
//! It provides `/sys/kernel/liveupdate/state` (read-only, notified on every change),
//! `transitions` (the changes since it started, notified with `state`), `generation`,
//! `flavour`, `/dev/liveupdate` (the `GET_STATE` and `SET_EVENT` ioctls), the freeze on a
//! kexec reboot, the handover record in kexec handover (KHO) memory that tells the next kernel
//! whether it was started by a live update, and optionally the debugfs test hook
//! `liveupdate/luo_selftest`. Built in, all of it exists before userspace starts.
//!
//! The states, events, transition rules, ioctl checks, the state cell and the sysfs bytes are
//! not written here: they are files of the luo project's userspace crates `luo-state` and
//! `luo-sysfs-abi`, which the module compiles unchanged (out of tree through `#[path]`, in the
//! tree as copies next to this file), so the two sides cannot drift apart. Those files reach
//! each other through the crate root (`crate::State`, `crate::next_state`, `crate::sync`), so
//! the root re-exports the names those files use, as their `lib.rs` files do.

#[path = "../../luo-state/src/cell.rs"]
pub mod cell;
#[path = "../../luo-state/src/event.rs"]
pub mod event;
#[path = "../../luo-state/src/ioctl.rs"]
pub mod ioctl;
#[path = "../../luo-state/src/observed.rs"]
pub mod observed;
#[path = "../../luo-state/src/record.rs"]
pub mod record;
#[path = "../../luo-state/src/state.rs"]
pub mod state;
#[path = "../../luo-state/src/sync.rs"]
mod sync;
#[path = "../../luo-state/src/transition.rs"]
pub mod transition;

#[path = "../../luo-sysfs-abi/src/flavour.rs"]
pub mod flavour;
#[path = "../../luo-sysfs-abi/src/log.rs"]
pub mod log;
#[path = "../../luo-sysfs-abi/src/path.rs"]
pub mod path;
#[path = "../../luo-sysfs-abi/src/show.rs"]
pub mod show;

pub use cell::StateCell;
pub use event::{Event, UnknownEvent};
pub use flavour::Flavour;
pub use record::{Arrival, Damage, Record};
pub use show::{show, show_flavour, show_generation, show_transitions};
pub use state::{State, UnknownState};
pub use transition::{next_state, TransitionError};

// The shared files implement `core::fmt::Display`; the kernel's print macros take its own
// `Display`, which a type implements by forwarding.
impl kernel::fmt::Display for record::RecordError {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for observed::Inconsistent {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for log::Line<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

// The generic sysfs abstraction this module's group is built on. Out of tree it is compiled as
// one of this module's own files; the in-tree series places the very same file at
// `rust/kernel/sysfs.rs`, where it is `kernel::sysfs` (`cargo xtask patches` rewrites these
// lines and the `crate::kernel_sysfs` paths). It names everything through `kernel::`, which
// resolves in both crates.
#[path = "../kernel/sysfs.rs"]
pub mod kernel_sysfs;

mod capability;
mod device;
mod kernfs;
mod kho;
// `--cfg luo_mainline`: the in-tree build, in a kernel with mainline's orchestrator, whose
// observer hook nothing outside the tree can reach.
#[cfg(luo_mainline)]
mod mainline;
mod orchestrator;
mod preflight;
mod reboot;
// `--cfg luo_selftest` (`LUO_SELFTEST=y` out of tree, `CONFIG_LIVEUPDATE_SYSFS_API_TEST` in the
// tree): the test hook exists only in test builds, never on a production load.
#[cfg(luo_selftest)]
mod selftest;
mod sysfs;

use kernel::{
    miscdevice::MiscDeviceRegistration,
    prelude::*,
    time::{Instant, Monotonic},
};
use log::{Line, NotLoading};

module! {
    type: Luo,
    name: "luo",
    authors: ["The luo developers"],
    description: "Live Update Orchestrator state machine with a pollable sysfs state (v3 ABI)",
    license: "GPL",
    params: {
        selftest: bool {
            default: false,
            description: "Create the debugfs test hook liveupdate/luo_selftest (test builds only)",
        },
    },
}

/// The module: every interface of the orchestrator, each registered for the module's lifetime.
///
/// Fields drop in declaration order, so unloading first removes what can change the state (the
/// standalone flavour's controls, or the observer), then the sysfs group that shows it, and
/// last the orchestrator with its handover record. Init sets them up in the opposite order, so
/// the state is decided before it is visible, and visible before anything can change it.
#[pin_data]
struct Luo {
    _flavour: Interfaces,
    _sysfs: sysfs::StateGroup,
    _orchestrator: orchestrator::Running,
}

/// What changes the state, in each flavour.
enum Interfaces {
    /// luo's own state machine: the device, the freeze on a kexec reboot, the test hook.
    Standalone { _controls: Pin<KBox<Controls>> },
    /// mainline's orchestrator: its observer hook.
    #[cfg(luo_mainline)]
    Observer {
        _observer: Pin<KBox<mainline::Observer>>,
    },
}

/// The standalone flavour's interfaces that change the state.
///
/// The device is registered last and removed first. Registered earlier, an opener could get
/// in while a later registration fails, and the failed init frees the module's code while
/// that file is open: `misc_deregister` does not revoke open files, and an init that fails
/// does not wait for the module's holders. Nothing after the device can fail: it is the last
/// registration of the module's init.
#[pin_data]
struct Controls {
    _device: Pin<KBox<MiscDeviceRegistration<device::Control>>>,
    _selftest: Option<Hook>,
    #[pin]
    _reboot: reboot::RebootNotifier,
}

impl Controls {
    fn register() -> impl PinInit<Self, Error> {
        // Fields are initialised in the order written here, and dropped in declaration order.
        try_pin_init!(Self {
            _reboot <- reboot::RebootNotifier::register(),
            _selftest: hook()?,
            _device: device::register()?,
        })
    }
}

/// The test hook, in a build that has it.
#[cfg(luo_selftest)]
type Hook = selftest::Selftest;
/// No test hook in this build: `Option<Hook>` is always `None`.
#[cfg(not(luo_selftest))]
type Hook = core::convert::Infallible;

/// Fails, with one log line, when the `selftest` parameter asks for a hook this build lacks;
/// checked first, so the refused load does nothing else.
fn check_selftest() -> Result {
    if cfg!(luo_selftest) || !module_parameters::selftest.value() {
        return Ok(());
    }
    pr_err!("{}\n", Line::NotLoading(NotLoading::NoTestHook));
    Err(EINVAL)
}

/// The test hook, when the `selftest` parameter asks for it and the build has it.
fn hook() -> Result<Option<Hook>> {
    if !module_parameters::selftest.value() {
        return Ok(None);
    }
    #[cfg(luo_selftest)]
    let hook = Some(selftest::Selftest::create()?);
    // `check_selftest` refused the load already.
    #[cfg(not(luo_selftest))]
    let hook = None;
    Ok(hook)
}

/// The one line of a load that fails once the state is decided: the steps after it log
/// nothing themselves, so a failure says once what could not be registered.
fn not_loading(what: &'static str) -> impl Fn(&Error) {
    move |error| {
        pr_err!(
            "{}\n",
            Line::NotLoading(NotLoading::CannotRegister { what, error })
        )
    }
}

/// The flavour of this boot.
#[derive(Clone, Copy)]
enum Choice {
    Standalone,
    #[cfg(luo_mainline)]
    Observer,
}

impl Choice {
    /// The observer when mainline's orchestrator is on, luo's own state machine otherwise.
    ///
    /// Mainline's orchestrator is on when the kernel was booted with `liveupdate=on` and KHO is
    /// on; both are settled before any module initcall. It can still turn itself off in its
    /// late initcall, when it fails to set up its outgoing data: then nothing can be preserved
    /// in this boot, and the observer shows `normal` throughout, which is what the sessions
    /// hold.
    fn now() -> Self {
        #[cfg(luo_mainline)]
        if mainline::enabled() {
            return Self::Observer;
        }
        Self::Standalone
    }

    /// The orchestrator of this flavour: luo's own, after the check that it can own its names,
    /// or the observer's, from mainline's number and the files mainline handed over.
    fn start(self) -> Result<orchestrator::Running> {
        match self {
            // Nothing is registered before the check, so a refusal leaves no trace behind.
            Self::Standalone => preflight::check().and_then(|()| orchestrator::Running::start()),
            #[cfg(luo_mainline)]
            Self::Observer => Ok(orchestrator::Running::observe(
                mainline::number(),
                observed::Sessions::at_boot(mainline::incoming_files()),
            )),
        }
    }

    /// What changes the state in this flavour, registered.
    fn register(self) -> Result<Interfaces> {
        Ok(match self {
            Self::Standalone => Interfaces::Standalone {
                _controls: KBox::pin_init(Controls::register(), GFP_KERNEL)?,
            },
            #[cfg(luo_mainline)]
            Self::Observer => Interfaces::Observer {
                _observer: KBox::pin_init(mainline::Observer::register(), GFP_KERNEL)?,
            },
        })
    }

    /// What [`Choice::register`] registers, for the line of a failed load.
    fn controls(self) -> &'static str {
        match self {
            Self::Standalone => "/dev/liveupdate, the reboot notifier or the test hook",
            #[cfg(luo_mainline)]
            Self::Observer => "the observer of mainline's sessions",
        }
    }
}

impl kernel::InPlaceModule for Luo {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let start = Instant::<Monotonic>::now();
        let choice = Choice::now();
        try_pin_init!(Self {
            _orchestrator: check_selftest().and_then(|()| choice.start())?,
            _sysfs: sysfs::StateGroup::register()
                .inspect_err(not_loading("/sys/kernel/liveupdate"))?,
            _flavour: choice
                .register()
                .inspect_err(not_loading(choice.controls()))?,
        })
        .pin_chain(move |_| {
            // The time is luo's share of a live update's arrival: from init to the state visible.
            let ready = log::Ready {
                // What `start` set up, and what `flavour` shows.
                flavour: orchestrator::flavour(),
                state: orchestrator::current(),
                generation: orchestrator::generation(),
                init_us: start.elapsed().as_micros_ceil(),
            };
            pr_info!("{}\n", Line::Ready(ready));
            Ok(())
        })
    }
}
