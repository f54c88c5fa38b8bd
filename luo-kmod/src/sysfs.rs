// SPDX-License-Identifier: GPL-2.0

//! The sysfs group `/sys/kernel/liveupdate` with its attributes `state` and `generation`.
//!
//! The kernel has no Rust abstraction for sysfs in 7.3, so this file is the binding: a static
//! `attribute_group` that [`StateGroup`] registers under `kernel_kobj` for exactly its lifetime,
//! one `extern "C"` trampoline per `show`, and [`notify_state`] for the setter. The bytes shown
//! come from `show.rs` of `luo-sysfs-abi`, the names and mode from its `path.rs`.
//!
//! Removing the group in `Drop` is what makes unloading safe for open files: kernfs waits for
//! running `show` calls to finish, then answers later reads with `ENODEV` and later polls with
//! `POLLERR` at once, and never calls into the module again. It does not wake a poll that is
//! already asleep, so `Drop` first retires the orchestrator, which notifies.

use core::ptr;

use kernel::{
    bindings,
    error::to_result,
    ffi::c_char,
    page::PAGE_SIZE,
    prelude::*,
    str::as_char_ptr_in_const_context,
    types::Opaque, //
};

use crate::kernfs::KernfsNode;
use crate::path::{GENERATION, GROUP_NAME, STATE, STATE_ATTR};
use crate::State;

/// A C object in a static, read by the kernel through raw pointers.
///
/// It lives in writable memory (an [`Opaque`]) like its C counterparts: the kernel takes these
/// pointers as `*mut` and lockdep uses the address of the key inside `struct attribute`.
#[repr(transparent)]
struct CStatic<T>(Opaque<T>);

// SAFETY: Rust code never reads or writes the object after its constant initialisation; the
// kernel only reads it (and takes addresses inside it), so sharing it between threads is sound.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    const fn new(value: T) -> Self {
        Self(Opaque::new(value))
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// A read-only attribute described by `attr` of `path.rs`, shown by `show`. With no `store`,
/// kernfs refuses writes itself.
const fn read_only(
    attr: crate::path::Attribute,
    show: unsafe extern "C" fn(
        *mut bindings::kobject,
        *mut bindings::kobj_attribute,
        *mut c_char,
    ) -> isize,
) -> bindings::kobj_attribute {
    bindings::kobj_attribute {
        attr: bindings::attribute {
            name: as_char_ptr_in_const_context(attr.name),
            mode: attr.mode,
            ..pin_init::zeroed()
        },
        __bindgen_anon_1: bindings::kobj_attribute__bindgen_ty_1 { show: Some(show) },
        ..pin_init::zeroed()
    }
}

/// `state`: mode 0444, notified on every change.
static STATE_ATTRIBUTE: CStatic<bindings::kobj_attribute> =
    CStatic::new(read_only(STATE, show_state));

/// `generation`: mode 0444, fixed for the life of the module.
static GENERATION_ATTRIBUTE: CStatic<bindings::kobj_attribute> =
    CStatic::new(read_only(GENERATION, show_generation));

/// The group's attributes, in the order of `path::ATTRIBUTES`, NULL-terminated.
static ATTRS: CStatic<[*mut bindings::attribute; 3]> = CStatic::new([
    STATE_ATTRIBUTE.get().cast(),
    GENERATION_ATTRIBUTE.get().cast(),
    ptr::null_mut(),
]);

/// The group `liveupdate`: a directory of that name under the kobject it is added to.
static GROUP: CStatic<bindings::attribute_group> = CStatic::new(bindings::attribute_group {
    name: as_char_ptr_in_const_context(GROUP_NAME),
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs: ATTRS.get().cast(),
    },
    ..pin_init::zeroed()
});

/// `show` of `state`: writes the current state's word and a newline into the page.
///
/// # Safety
///
/// Called by sysfs only, with `buf` pointing to a writable buffer of `PAGE_SIZE` bytes that
/// nothing else accesses during the call.
unsafe extern "C" fn show_state(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes a page-sized buffer that is ours for the duration of the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
    // kernfs sampled its event counter just before this call; `current` issues the read
    // barrier that pairs with the setter's write barrier (see `StateCell`).
    match crate::orchestrator::current() {
        // The module is unloading (`orchestrator::retire`): the interface is gone.
        State::Undefined => ENODEV.to_errno() as isize,
        state => match crate::show(state, page) {
            Some(len) => len as isize,
            // Unreachable: a page holds every word.
            None => EINVAL.to_errno() as isize,
        },
    }
}

/// `show` of `generation`: writes this kernel's live-update generation in decimal and a newline.
///
/// # Safety
///
/// Called by sysfs only, with `buf` pointing to a writable buffer of `PAGE_SIZE` bytes that
/// nothing else accesses during the call.
unsafe extern "C" fn show_generation(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes a page-sized buffer that is ours for the duration of the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
    if crate::orchestrator::current() == State::Undefined {
        // The module is unloading, as for `state`.
        return ENODEV.to_errno() as isize;
    }
    match crate::show_generation(crate::orchestrator::generation(), page) {
        Some(len) => len as isize,
        // Unreachable: a page holds every number.
        None => EINVAL.to_errno() as isize,
    }
}

/// The registration of `/sys/kernel/liveupdate`.
///
/// # Invariants
///
/// While a `StateGroup` exists, [`GROUP`] is registered under `kernel_kobj` and `state` is a
/// reference to its `state` file. Only [`StateGroup::register`] creates one, so there is at
/// most one.
pub(crate) struct StateGroup {
    state: KernfsNode,
}

impl StateGroup {
    /// Creates `/sys/kernel/liveupdate` and its files; fails with `EEXIST` when the directory
    /// already exists (`preflight` checks that first, so only a race gets here).
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: `kernel_kobj` is set at boot (core initcall), before any module loads, and
        // never freed. `GROUP` and everything it points to are statics that outlive the
        // registration, because `Drop` removes the group before the module's memory goes.
        let ret = unsafe { bindings::sysfs_create_group(bindings::kernel_kobj, GROUP.get()) };
        to_result(ret).inspect_err(|err| {
            if *err == EEXIST {
                pr_err!(
                    "/sys/kernel/liveupdate already exists: another live update orchestrator \
                     (the kernel's CONFIG_LIVEUPDATE, or luo itself) owns it; not loading\n"
                );
            }
        })?;
        let Some(state) = KernfsNode::sys_kernel().walk(&[GROUP_NAME, STATE_ATTR]) else {
            // SAFETY: The group was registered just above and nothing else knows of it yet.
            unsafe { bindings::sysfs_remove_group(bindings::kernel_kobj, GROUP.get()) };
            pr_err!("/sys/kernel/liveupdate/state vanished right after its creation\n");
            return Err(ENOENT);
        };
        // INVARIANT: The group was registered above and `state` references its file.
        Ok(Self { state })
    }
}

impl Drop for StateGroup {
    /// Unregisters so that every poller of `state` wakes and learns the file is gone.
    ///
    /// The orchestrator retires first: `show` answers `ENODEV` from then on, and the notify
    /// wakes the pollers asleep now. A poller that reads that `ENODEV` and polls again before
    /// the removal would sleep again (its event counter is current), and kernfs wakes no one
    /// when it removes a file without mmap or release. So once the group is gone, `state` is
    /// notified once more through the reference kept for this: that poll wakes, and kernfs
    /// answers it, and every later poll, with `POLLERR | POLLPRI` at once, because the node is
    /// no longer active.
    fn drop(&mut self) {
        crate::orchestrator::retire();
        // SAFETY: By the type invariant the group is registered under `kernel_kobj`, and this
        // is the one owner that removes it. kernfs drains running `show` calls before this
        // returns.
        unsafe { bindings::sysfs_remove_group(bindings::kernel_kobj, GROUP.get()) };
        self.state.notify();
    }
}

/// Wakes the pollers of `state` and marks the change for readers (`sysfs_notify`).
///
/// Harmless while the group is not registered: sysfs finds no such file and does nothing.
pub(crate) fn notify_state() {
    // SAFETY: `kernel_kobj` is valid for the whole uptime; both names are NUL-terminated
    // statics; `sysfs_notify` may sleep, and the setter calls it in process context only.
    unsafe {
        bindings::sysfs_notify(
            bindings::kernel_kobj,
            as_char_ptr_in_const_context(GROUP_NAME),
            as_char_ptr_in_const_context(STATE_ATTR),
        )
    };
}
