// SPDX-License-Identifier: GPL-2.0

//! A counted reference to a kernfs node (a sysfs directory or file), to look names up before
//! registering anything (`preflight`). Notifying a file is `kernel::sysfs`'s `Notifier`.

use core::ptr::NonNull;

#[cfg(MODULE)]
use kernel::sync::rcu;
use kernel::{bindings, prelude::*, str::as_char_ptr_in_const_context};

/// A reference to a kernfs node.
///
/// # Invariants
///
/// `node` is a kernfs node on which this value holds one reference, dropped in `Drop`.
pub(crate) struct KernfsNode {
    node: NonNull<bindings::kernfs_node>,
}

// SAFETY: A kernfs reference may be used and dropped from any thread; kernfs locks internally.
unsafe impl Send for KernfsNode {}
// SAFETY: The only `&self` operations (`child`, `walk`) are safe to call concurrently.
unsafe impl Sync for KernfsNode {}

impl KernfsNode {
    /// The directory of `/sys/kernel` (`kernel_kobj`); `None` when the boot could not create it
    /// (`ksysfs_init` failed, which the kernel survives).
    pub(crate) fn sys_kernel() -> Option<Self> {
        // SAFETY: `kernel_kobj` is set in a core initcall, before any module loads or any
        // built-in device initcall runs, and never changed or freed after; it is NULL if that
        // initcall failed.
        let kobj = NonNull::new(unsafe { bindings::kernel_kobj })?;
        // SAFETY: `kobj` is a live kobject (above); its directory node `sd` lives as long as
        // the kobject, and is NULL only for a kobject not in sysfs.
        let node = NonNull::new(unsafe { (*kobj.as_ptr()).sd })?;
        // SAFETY: `node` is a live kernfs node; `kernfs_get` takes the reference this value
        // owns.
        unsafe { bindings::kernfs_get(node.as_ptr()) };
        // INVARIANT: The reference was taken just above.
        Some(Self { node })
    }

    /// The root of sysfs: the parent of `/sys/kernel`.
    ///
    /// Built in, `kernfs_get_parent()`, which kernfs documents for this. A module cannot call it
    /// (it is not exported, nor is `sysfs_root_kn`, nor any other way to the root), so out of
    /// tree this reads the node's parent pointer `__parent` the way `kernfs_get_parent()` does
    /// under RCU: `/sys/kernel` is never renamed or moved, so the rename lock it takes instead
    /// has nothing to exclude.
    #[cfg(not(MODULE))]
    pub(crate) fn sysfs_root() -> Option<Self> {
        let kernel = Self::sys_kernel()?;
        // SAFETY: `kernel.node` is valid (type invariant); the parent comes back with a
        // reference for the caller, or NULL for a root.
        let parent = unsafe { bindings::kernfs_get_parent(kernel.node.as_ptr()) };
        // INVARIANT: `kernfs_get_parent` took the reference.
        NonNull::new(parent).map(|node| Self { node })
    }

    /// The root of sysfs: the parent of `/sys/kernel` (see the built-in variant above).
    #[cfg(MODULE)]
    pub(crate) fn sysfs_root() -> Option<Self> {
        let kernel = Self::sys_kernel()?;
        let _rcu = rcu::read_lock();
        // SAFETY: `kernel.node` is valid (type invariant). `__parent` is RCU-protected; the
        // read-side lock is held, the volatile read is the `rcu_dereference`, and a node that
        // RCU still shows cannot be freed before the unlock, so taking a reference is sound.
        unsafe {
            let parent = core::ptr::addr_of!((*kernel.node.as_ptr()).__parent).read_volatile();
            let parent = NonNull::new(parent)?;
            bindings::kernfs_get(parent.as_ptr());
            // INVARIANT: The reference was taken just above.
            Some(Self { node: parent })
        }
    }

    /// The child named `name`, if this directory has one.
    pub(crate) fn child(&self, name: &'static CStr) -> Option<Self> {
        // SAFETY: `self.node` is valid (type invariant); the name is NUL-terminated; a NULL
        // namespace is the one sysfs uses outside network namespaces. The returned node, if
        // any, carries a reference for the caller.
        let node = unsafe {
            bindings::kernfs_find_and_get_ns(
                self.node.as_ptr(),
                as_char_ptr_in_const_context(name),
                core::ptr::null(),
            )
        };
        // INVARIANT: `kernfs_find_and_get_ns` returned a referenced node.
        NonNull::new(node).map(|node| Self { node })
    }

    /// The node at `path` below this directory, one name after the other.
    pub(crate) fn walk(&self, path: &[&'static CStr]) -> Option<Self> {
        let (first, rest) = path.split_first()?;
        let mut node = self.child(first)?;
        for name in rest {
            node = node.child(name)?;
        }
        Some(node)
    }
}

impl Drop for KernfsNode {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference on `node`.
        unsafe { bindings::kernfs_put(self.node.as_ptr()) };
    }
}
