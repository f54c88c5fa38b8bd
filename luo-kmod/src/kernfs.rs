// SPDX-License-Identifier: GPL-2.0

//! A counted reference to a kernfs node (a sysfs directory or file), for the two things the
//! module needs beyond the sysfs group itself: looking a name up before registering anything,
//! and waking the pollers of `state` after its file is removed.
//!
//! kernfs frees a node only when its last reference goes, and a removed file's open-file
//! bookkeeping (the poll wait queue and event counter) lives as long as files are open, so a
//! reference taken while the file exists can still notify it after `sysfs_remove_group`.

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
// SAFETY: The only `&self` operations (`child`, `notify`) are safe to call concurrently.
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

    /// Wakes the pollers of this file and marks a change for its readers (`sysfs_notify`
    /// without the lookup). Works on a file that was removed while still open.
    ///
    /// Only called on file nodes: kernfs warns for a directory.
    pub(crate) fn notify(&self) {
        // SAFETY: `self.node` is valid (type invariant) and a file node (the caller's promise);
        // `kernfs_notify` may be called from any context and takes its own reference for the
        // deferred fsnotify work.
        unsafe { bindings::kernfs_notify(self.node.as_ptr()) };
    }
}

impl Drop for KernfsNode {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference on `node`.
        unsafe { bindings::kernfs_put(self.node.as_ptr()) };
    }
}
