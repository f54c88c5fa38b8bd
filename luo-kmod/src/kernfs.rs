// SPDX-License-Identifier: GPL-2.0

//! A counted reference to a kernfs node (a sysfs directory or file), to look names up before
//! registering anything (`preflight`). Notifying a file is `kernel::sysfs`'s `Notifier`.

use core::ptr::NonNull;

use kernel::{bindings, prelude::*, str::as_char_ptr_in_const_context, sync::rcu};

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
    /// The directory of `/sys/kernel` (`kernel_kobj`).
    pub(crate) fn sys_kernel() -> Self {
        // SAFETY: `kernel_kobj` is created at boot (core initcall), before any module loads or
        // any built-in device initcall runs, and never freed; its directory node `sd` lives as
        // long as the kobject. `kernfs_get` takes the reference this value owns.
        // INVARIANT: The reference was taken just above.
        unsafe {
            let node = (*bindings::kernel_kobj).sd;
            bindings::kernfs_get(node);
            Self {
                node: NonNull::new_unchecked(node),
            }
        }
    }

    /// The root of sysfs: the parent of `/sys/kernel`.
    pub(crate) fn sysfs_root() -> Option<Self> {
        let kernel = Self::sys_kernel();
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
