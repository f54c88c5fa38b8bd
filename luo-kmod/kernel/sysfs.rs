// SPDX-License-Identifier: GPL-2.0

//! sysfs: static groups of read-only attributes.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h)
//!
//! A [`Group`] is a directory of [`Attribute`]s. All of them are `static`s, as in C, because
//! sysfs keeps pointers to them for as long as the files exist. A [`Registration`] creates the
//! group under a [`Kobject`] and removes it when dropped; the removal waits for running `show`
//! calls, and no call starts after it, so the code behind the attributes can go away once the
//! registration is gone.
//!
//! A [`Notifier`] wakes the pollers of one file and marks it changed for its readers
//! (`sysfs_notify_dirent()`). It holds a reference to the file's kernfs node, so it can still
//! notify after the group was removed: kernfs does not wake pollers when it removes a file, and a
//! last notification is how a poller asleep on a removed file learns that it is gone (its poll
//! then returns `POLLERR | POLLPRI`).
//!
//! Only read-only attributes of kobjects that use `kobj_sysfs_ops` (such as `/sys/kernel`) are
//! covered: no `store`, no binary attributes, no visibility callback, no device attributes.
//!
//! # Examples
//!
//! ```ignore
//! use kernel::{page::PAGE_SIZE, prelude::*, sysfs};
//!
//! struct Answer;
//!
//! #[vtable]
//! impl sysfs::AttributeOperations for Answer {
//!     fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
//!         page[..3].copy_from_slice(b"42\n");
//!         Ok(3)
//!     }
//! }
//!
//! static ANSWER: sysfs::Attribute<Answer> = sysfs::Attribute::new(c"answer", 0o444);
//! static ATTRIBUTES: sysfs::AttributeList<1> = sysfs::AttributeList::new([ANSWER.to_ref()]);
//! static GROUP: sysfs::Group = sysfs::Group::new(c"example", &ATTRIBUTES);
//!
//! // `/sys/kernel/example/answer` exists while `registration` does.
//! let kernel = sysfs::Kobject::kernel().ok_or(ENOENT)?;
//! let registration = sysfs::Registration::new(kernel, &GROUP)?;
//! let answer = registration.notifier(&ANSWER)?;
//! // The answer changed: wake its pollers.
//! answer.notify();
//! ```

use core::{
    marker::PhantomData,
    mem::size_of,
    ptr::{
        self,
        NonNull, //
    }, //
};

use kernel::{
    bindings,
    error::to_result,
    ffi::c_char,
    page::PAGE_SIZE,
    prelude::*,
    str::as_char_ptr_in_const_context,
    types::Opaque, //
};

/// The operations of a read-only sysfs attribute.
#[vtable]
pub trait AttributeOperations {
    /// Writes the attribute's value to `page` and returns the number of bytes written.
    ///
    /// sysfs calls this, in process context, when a reader reads the file from its start. An
    /// error is returned to the reader.
    fn show(page: &mut [u8; PAGE_SIZE]) -> Result<usize>;
}

/// A read-only sysfs attribute shown by `O`, meant for a `static`.
///
/// # Invariants
///
/// `attribute` is a `kobj_attribute` whose `show` is [`Attribute::show_callback`] and whose
/// name is a `'static` C string.
#[repr(transparent)]
pub struct Attribute<O> {
    // Writable memory, as in C: sysfs takes the attribute as `*mut`, and with lockdep the
    // attribute holds the lock class key of its file.
    attribute: Opaque<bindings::kobj_attribute>,
    _ops: PhantomData<O>,
}

// SAFETY: Rust never accesses the attribute after its constant initialisation, and the C side
// only reads it, so a shared reference may be used from any thread.
unsafe impl<O> Sync for Attribute<O> {}

impl<O: AttributeOperations> Attribute<O> {
    /// Creates an attribute named `name` with permissions `mode`.
    ///
    /// `mode` may only hold read permissions (at most `0o444`), since there is no `store`; in a
    /// `static` this is checked at compile time.
    pub const fn new(name: &'static CStr, mode: u16) -> Self {
        assert!(
            mode & !0o444 == 0,
            "a read-only sysfs attribute has at most mode 0o444"
        );
        let mut attribute: bindings::kobj_attribute = pin_init::zeroed();
        attribute.attr.name = as_char_ptr_in_const_context(name);
        attribute.attr.mode = mode;
        // `show` and `show_const` share a union unless CONFIG_CFI makes them a struct; an
        // assignment compiles either way, and sysfs calls whichever is set.
        attribute.__bindgen_anon_1.show = Some(Self::show_callback);
        // INVARIANT: `show` and the `'static` name are set above.
        Self {
            attribute: Opaque::new(attribute),
            _ops: PhantomData,
        }
    }

    /// The `show` of `struct kobj_attribute`: hands sysfs's page to [`AttributeOperations::show`].
    ///
    /// # Safety
    ///
    /// `buf` must point to a buffer of `PAGE_SIZE` bytes, valid for writes, that nothing else
    /// accesses during the call (the page sysfs passes to `show`).
    unsafe extern "C" fn show_callback(
        _kobj: *mut bindings::kobject,
        _attr: *mut bindings::kobj_attribute,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: By the safety requirements of this function `buf` is valid for writes of
        // `PAGE_SIZE` bytes and ours alone during the call; a byte array has alignment 1.
        let page = unsafe { &mut *buf.cast::<[u8; PAGE_SIZE]>() };
        match O::show(page) {
            // A length past the page is a bug of `show`; sysfs warns about it and truncates.
            Ok(len) => len.min(PAGE_SIZE) as isize,
            Err(err) => err.to_errno() as isize,
        }
    }
}

impl<O> Attribute<O> {
    /// This attribute as an entry of an [`AttributeList`].
    pub const fn to_ref(&'static self) -> AttributeRef {
        // `attr` is the first field of `struct kobj_attribute`, so the cast points to it; sysfs
        // gets back to the `kobj_attribute` with `container_of`.
        // INVARIANT: `self` lives for `'static`.
        AttributeRef(self.attribute.get().cast())
    }

    /// The attribute's name.
    fn name(&self) -> *const c_char {
        // SAFETY: The attribute is initialised and its name is never written after `new`.
        unsafe { (*self.attribute.get()).attr.name }
    }
}

/// A reference to an [`Attribute`] in a `static`, whatever its operations.
///
/// # Invariants
///
/// The pointer is the `struct attribute` of an [`Attribute`] that lives for `'static`.
#[derive(Clone, Copy)]
pub struct AttributeRef(*mut bindings::attribute);

/// The attributes of a [`Group`]: a NULL-terminated array of pointers, as C wants it.
#[repr(C)]
pub struct AttributeList<const N: usize> {
    attributes: [*mut bindings::attribute; N],
    // With `repr(C)` and no padding between pointers, this is element `N` of the array.
    terminator: *mut bindings::attribute,
}

// SAFETY: The list is never written after its constant initialisation and its pointers point to
// `Sync` statics, so a shared reference may be used from any thread.
unsafe impl<const N: usize> Sync for AttributeList<N> {}

impl<const N: usize> AttributeList<N> {
    /// Creates the list of `attributes`, in the order their files are created.
    pub const fn new(attributes: [AttributeRef; N]) -> Self {
        const {
            assert!(size_of::<Self>() == (N + 1) * size_of::<*mut bindings::attribute>());
        }
        let mut pointers = [ptr::null_mut(); N];
        let mut i = 0;
        while i < N {
            pointers[i] = attributes[i].0;
            i += 1;
        }
        Self {
            attributes: pointers,
            terminator: ptr::null_mut(),
        }
    }
}

/// A named group of attributes: a directory of that name under the kobject it is registered on.
///
/// # Invariants
///
/// `group` has a `'static` name and points to a `'static` [`AttributeList`].
#[repr(transparent)]
pub struct Group {
    group: bindings::attribute_group,
}

// SAFETY: The group is never written after its constant initialisation and points to `Sync`
// statics, so a shared reference may be used from any thread.
unsafe impl Sync for Group {}

impl Group {
    /// Creates the group `name` holding `attributes`.
    pub const fn new<const N: usize>(
        name: &'static CStr,
        attributes: &'static AttributeList<N>,
    ) -> Self {
        let mut group: bindings::attribute_group = pin_init::zeroed();
        group.name = as_char_ptr_in_const_context(name);
        // sysfs only reads the array; the C field is not `const` for historical reasons.
        group.__bindgen_anon_2.attrs = ptr::from_ref(attributes).cast_mut().cast();
        // INVARIANT: Both pointers come from `'static` references.
        Self { group }
    }

    fn as_raw(&self) -> *const bindings::attribute_group {
        &self.group
    }
}

/// A kobject whose sysfs files are [`Attribute`]s: its type uses `kobj_sysfs_ops`.
///
/// # Invariants
///
/// The kobject is registered in sysfs, its type shows `kobj_attribute`s, and it is never
/// released.
#[repr(transparent)]
pub struct Kobject(Opaque<bindings::kobject>);

// SAFETY: The kobject is only passed to sysfs functions, which lock internally and may be called
// from any thread.
unsafe impl Sync for Kobject {}
// SAFETY: As above.
unsafe impl Send for Kobject {}

impl Kobject {
    /// `/sys/kernel`, once the kernel has created it (a core initcall, before any device
    /// initcall or module).
    pub fn kernel() -> Option<&'static Self> {
        // SAFETY: `kernel_kobj` is written once, by `ksysfs_init()` during the core initcalls,
        // and never again, so reading it does not race with a write.
        let kobj = NonNull::new(unsafe { bindings::kernel_kobj })?;
        // SAFETY: `Kobject` is a transparent wrapper of `struct kobject`.
        // INVARIANT: `kernel_kobj` comes from `kobject_create_and_add()`, whose type
        // (`dynamic_kobj_ktype`) uses `kobj_sysfs_ops`, and the kernel never releases it.
        Some(unsafe { &*kobj.as_ptr().cast::<Self>() })
    }

    fn as_raw(&self) -> *mut bindings::kobject {
        self.0.get()
    }
}

/// The registration of a [`Group`] under a [`Kobject`]: the group's directory and files exist
/// for exactly the lifetime of this value.
///
/// # Invariants
///
/// `group` is registered under `parent`, and this value is what removes it.
pub struct Registration {
    parent: &'static Kobject,
    group: &'static Group,
}

impl Registration {
    /// Creates the group's directory and its files under `parent`.
    ///
    /// Fails with `EEXIST` when `parent` already has an entry of the group's name; sysfs then
    /// also logs a warning with a stack trace, so callers that expect the name to be taken
    /// should look it up first.
    pub fn new(parent: &'static Kobject, group: &'static Group) -> Result<Self> {
        // SAFETY: `parent` is a registered kobject whose type shows `kobj_attribute`s (type
        // invariant of `Kobject`); `group`, its name and every attribute it points to are
        // `'static` (type invariants of `Group` and `AttributeRef`), and `Drop` removes the
        // group before a module that owns them can go.
        to_result(unsafe { bindings::sysfs_create_group(parent.as_raw(), group.as_raw()) })?;
        // INVARIANT: The group was registered just above.
        Ok(Self { parent, group })
    }

    /// A [`Notifier`] for the file of `attribute` in this group.
    ///
    /// Fails with `ENOENT` when the group has no file of that attribute's name.
    pub fn notifier<O>(&self, attribute: &'static Attribute<O>) -> Result<Notifier> {
        // SAFETY: `parent` is registered in sysfs (type invariant of `Kobject`), so `sd` is its
        // directory, which lives as long as the kobject.
        let parent = unsafe { (*self.parent.as_raw()).sd };
        let dir = Node::find(parent, self.group.group.name).ok_or(ENOENT)?;
        let file = Node::find(dir.as_ptr(), attribute.name()).ok_or(ENOENT)?;
        Ok(Notifier(file))
    }
}

impl Drop for Registration {
    /// Removes the group's files and directory, once running `show` calls have returned.
    ///
    /// Open files stay open: reads answer `ENODEV`, and polls return at once.
    fn drop(&mut self) {
        // SAFETY: By the type invariant `group` is registered under `parent`, and this is the
        // one place that removes it.
        unsafe { bindings::sysfs_remove_group(self.parent.as_raw(), self.group.as_raw()) };
    }
}

/// A reference to a kernfs node: a sysfs directory or file.
///
/// # Invariants
///
/// This value holds one reference on the node.
struct Node(NonNull<bindings::kernfs_node>);

impl Node {
    /// The child `name` of the directory `parent`, as `sysfs_get_dirent()` finds it.
    fn find(parent: *mut bindings::kernfs_node, name: *const c_char) -> Option<Self> {
        // SAFETY: Callers pass a live directory node and a NUL-terminated name that outlive the
        // call; a NULL namespace is the one sysfs uses outside network namespaces.
        let node = unsafe { bindings::kernfs_find_and_get_ns(parent, name, ptr::null()) };
        // INVARIANT: `kernfs_find_and_get_ns()` returns the node with a reference taken.
        NonNull::new(node).map(Self)
    }

    fn as_ptr(&self) -> *mut bindings::kernfs_node {
        self.0.as_ptr()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference on the node.
        unsafe { bindings::kernfs_put(self.0.as_ptr()) };
    }
}

/// Wakes the pollers of one sysfs file and marks it changed for its readers.
///
/// It holds a reference to the file's kernfs node, so it may outlive the [`Registration`] of
/// the group: notifying a removed file wakes the pollers still asleep on it, and kernfs answers
/// their poll, and every later one, with `POLLERR | POLLPRI`.
pub struct Notifier(Node);

// SAFETY: kernfs nodes are reference counted and locked internally; the reference may be used
// and dropped on any thread.
unsafe impl Send for Notifier {}
// SAFETY: `notify`, the only `&self` method, may run concurrently with itself.
unsafe impl Sync for Notifier {}

impl Notifier {
    /// Wakes the pollers of the file and marks it changed for readers (`sysfs_notify_dirent()`).
    ///
    /// Does not sleep: the fsnotify event is deferred to a work item.
    pub fn notify(&self) {
        // SAFETY: The node is live (type invariant of `Node`) and a file: `Registration` looks it
        // up in a group's directory, which holds files only. `kernfs_notify()` may be called in
        // any context.
        unsafe { bindings::kernfs_notify(self.0.as_ptr()) };
    }
}
