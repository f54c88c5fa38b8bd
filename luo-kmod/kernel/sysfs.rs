// SPDX-License-Identifier: GPL-2.0

//! sysfs: groups of read-only attributes that show their owner's data.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h)
//!
//! An [`Attribute`] declares one file: its name, its mode, the [`AttributeOperations`] that
//! show it, and the lockdep class of its file (one per declaration, usually from
//! [`static_lock_class!`], as each C attribute has a `static` key of its own). A
//! [`Registration`] owns the data its attributes show and creates a directory of them under a
//! [`Kobject`] (`sysfs_create_group()`); each `show` gets a shared reference to that data and a
//! [`ShowBuffer`] to write to. Dropping the registration removes the directory;
//! the removal waits for running `show` calls and no call starts after it, so the data is
//! dropped only after its last reader.
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
//! use core::fmt::Write;
//! use kernel::{
//!     prelude::*,
//!     sync::{atomic::{Atomic, Relaxed}, static_lock_class},
//!     sysfs,
//! };
//!
//! struct Counter {
//!     count: Atomic<u64>,
//! }
//!
//! struct CountFile;
//!
//! impl sysfs::AttributeOperations for CountFile {
//!     type Data = Counter;
//!
//!     fn show(counter: &Counter, buffer: &mut sysfs::ShowBuffer<'_>) -> Result {
//!         writeln!(buffer, "{}", counter.count.load(Relaxed)).map_err(|_| EFBIG)
//!     }
//! }
//!
//! static COUNT: sysfs::Attribute<Counter> =
//!     sysfs::Attribute::new::<CountFile>(c"count", 0o444, static_lock_class!());
//! static ATTRIBUTES: [&sysfs::Attribute<Counter>; 1] = [&COUNT];
//!
//! // `/sys/kernel/example/count` exists while `registration` does.
//! let kernel = sysfs::Kobject::kernel().ok_or(ENOENT)?;
//! let counter = Counter { count: Atomic::new(0) };
//! let registration =
//!     sysfs::Registration::new(kernel, c"example", &ATTRIBUTES, counter, GFP_KERNEL)?;
//! let count = registration.notifier(&COUNT)?;
//! // The count changed: wake its pollers.
//! registration.data().count.fetch_add(1, Relaxed);
//! count.notify();
//! ```
//!
//! [`static_lock_class!`]: kernel::sync::static_lock_class

use core::{
    fmt,
    marker::PhantomData,
    mem::size_of,
    ptr::{
        self,
        NonNull, //
    }, //
};

use kernel::{
    alloc::Flags,
    bindings,
    error::to_result,
    ffi::c_char,
    page::PAGE_SIZE,
    prelude::*,
    str::as_char_ptr_in_const_context,
    sync::LockClassKey,
    types::Opaque, //
};

// The sysfs helpers of `rust/helpers/sysfs.c`. An out-of-tree build compiles that file with
// the module and declares its functions here, since its kernel's bindings lack them.
#[cfg(MODULE)]
mod helpers {
    use super::KobjShow;
    use kernel::{bindings, ffi::c_char};

    // Only pointers cross these calls, but the lint looks through them: in some configurations
    // `kernfs_node` reaches a field-less struct of bindgen's (`its_array`). The declarations
    // bindgen generates in the tree allow the lint for the same reason.
    #[allow(improper_ctypes)]
    extern "C" {
        #[link_name = "rust_helper_sysfs_kobj_attribute_set_show"]
        pub(super) fn sysfs_kobj_attribute_set_show(
            attr: *mut bindings::kobj_attribute,
            show: Option<KobjShow>,
        );
        #[link_name = "rust_helper_sysfs_group_set_attrs"]
        pub(super) fn sysfs_group_set_attrs(
            grp: *mut bindings::attribute_group,
            attrs: *mut *mut bindings::attribute,
        );
        #[link_name = "rust_helper_sysfs_get_dirent"]
        pub(super) fn sysfs_get_dirent(
            parent: *mut bindings::kernfs_node,
            name: *const c_char,
        ) -> *mut bindings::kernfs_node;
        #[link_name = "rust_helper_sysfs_put"]
        pub(super) fn sysfs_put(kn: *mut bindings::kernfs_node);
        #[link_name = "rust_helper_sysfs_notify_dirent"]
        pub(super) fn sysfs_notify_dirent(kn: *mut bindings::kernfs_node);
    }
}
#[cfg(not(MODULE))]
use kernel::bindings as helpers;

/// The operations of a read-only sysfs attribute, which shows a value of its group's data.
pub trait AttributeOperations {
    /// The data of the [`Registration`] the attribute belongs to.
    type Data: Sync;

    /// Writes the attribute's value, from `data`, to `buffer`.
    ///
    /// sysfs calls this, in process context, when a reader reads the file from its start; it
    /// may run on several threads at once. What was written is the file's content; an error
    /// is returned to the reader instead.
    fn show(data: &Self::Data, buffer: &mut ShowBuffer<'_>) -> Result;
}

/// The page a `show` writes to: a bounded writer that refuses what does not fit.
///
/// It holds at most `PAGE_SIZE - 1` bytes, as `sysfs_emit()` writes: `sysfs_kf_seq_show()`
/// takes a count of `PAGE_SIZE` or more for an overflow, warns ("OOB write or bad count") and
/// cuts the content to `PAGE_SIZE - 1` bytes.
///
/// # Invariants
///
/// `len < PAGE_SIZE`, and the first `len` bytes of `page` are what was written.
pub struct ShowBuffer<'a> {
    page: &'a mut [u8; PAGE_SIZE],
    len: usize,
}

impl<'a> ShowBuffer<'a> {
    /// The most a `show` may write: the page but its last byte.
    pub const CAPACITY: usize = PAGE_SIZE - 1;

    fn new(page: &'a mut [u8; PAGE_SIZE]) -> Self {
        // INVARIANT: Nothing is written yet, and `0 < PAGE_SIZE`.
        Self { page, len: 0 }
    }

    /// Appends `bytes`, or fails with `EFBIG`, writing nothing, when they do not fit.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result {
        self.write_with(|rest| {
            rest.get_mut(..bytes.len())?.copy_from_slice(bytes);
            Some(bytes.len())
        })
    }

    /// Lets `write` write in place into the rest of the page and appends the number of bytes it
    /// returns, which it wrote at the start of the slice it got; `None`, or a number larger than
    /// that slice, fails with `EFBIG` and appends nothing.
    ///
    /// For functions that render into a `&mut [u8]` and return the length, without a copy.
    pub fn write_with(&mut self, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> Result {
        // Never `None`: `len <= CAPACITY` by the type invariant.
        let rest = self.page.get_mut(self.len..Self::CAPACITY).ok_or(EFBIG)?;
        let room = rest.len();
        let written = write(rest)
            .filter(|&written| written <= room)
            .ok_or(EFBIG)?;
        // INVARIANT: `written <= room = CAPACITY - len`, so the sum is at most `CAPACITY`, below
        // `PAGE_SIZE`, and does not overflow; `write` wrote those bytes right after the first
        // `len`.
        self.len += written;
        Ok(())
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Formatting into the page: a write that does not fit fails and writes nothing of that piece;
/// the `show` returns an error then (see [`ShowBuffer::write_bytes`]).
impl fmt::Write for ShowBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// The `show` of a `struct kobj_attribute`.
type KobjShow = unsafe extern "C" fn(
    *mut bindings::kobject,
    *mut bindings::kobj_attribute,
    *mut c_char,
) -> isize;

/// The declaration of a read-only attribute of a group whose data is `Data`, meant for a
/// `static`.
///
/// A declaration holds no C object: a [`Registration`] builds the attribute sysfs sees from
/// it, next to the data.
pub struct Attribute<Data> {
    name: &'static CStr,
    mode: u16,
    show: KobjShow,
    // Read only where `struct attribute` has a key: without lockdep there is none to set.
    #[cfg_attr(not(CONFIG_DEBUG_LOCK_ALLOC), allow(dead_code))]
    key: Pin<&'static LockClassKey>,
    _data: PhantomData<fn(&Data)>,
}

impl<Data: Sync> Attribute<Data> {
    /// Declares an attribute named `name` with permissions `mode`, shown by `O`.
    ///
    /// `key` is the lockdep class of the file's active references (what `sysfs_attr_init()`
    /// gives a C attribute): lockdep then tells apart the files of different declarations, so a
    /// `show` that takes a lock another file's removal holds is reported against the right
    /// files. Pass [`static_lock_class!`] for a class of this declaration's own.
    ///
    /// `mode` may only hold read permissions (at most `0o444`), since there is no `store`; in a
    /// `static` this is checked at compile time.
    ///
    /// [`static_lock_class!`]: kernel::sync::static_lock_class
    pub const fn new<O: AttributeOperations<Data = Data>>(
        name: &'static CStr,
        mode: u16,
        key: Pin<&'static LockClassKey>,
    ) -> Self {
        assert!(
            mode & !0o444 == 0,
            "a read-only sysfs attribute has at most mode 0o444"
        );
        Self {
            name,
            mode,
            show: show_callback::<O>,
            key,
            _data: PhantomData,
        }
    }
}

/// The `show` of the attributes shown by `O`: hands sysfs's page and the group's data to
/// [`AttributeOperations::show`].
///
/// # Safety
///
/// `attr` must be the pointer [`Registration::new`] derived from a live [`Slot`] of a
/// registration whose data is `O::Data` (valid for the whole slot), and `buf` must point to a
/// buffer of `PAGE_SIZE` bytes, valid for writes, that nothing else accesses during the call
/// (the page sysfs passes to `show`).
unsafe extern "C" fn show_callback<O: AttributeOperations>(
    _kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: By the safety requirements `attr` is the `attribute` field of a live slot, and it
    // was derived from a pointer to the whole slot, so stepping back to the slot stays within
    // what it may access. The slot lives while sysfs may call its `show`, and nothing writes to
    // it then.
    let slot =
        unsafe { &*kernel::container_of!(Opaque::cast_from(attr), Slot<O::Data>, attribute) };
    // SAFETY: The slot points to its registration's data (type invariant of `Slot`), which
    // lives at least as long as the slot.
    let data = unsafe { &*slot.data };
    // SAFETY: By the safety requirements `buf` is valid for writes of `PAGE_SIZE` bytes and
    // ours alone during the call; a byte array has alignment 1.
    let page = unsafe { &mut *buf.cast::<[u8; PAGE_SIZE]>() };
    let mut buffer = ShowBuffer::new(page);
    match O::show(data, &mut buffer) {
        // Below `PAGE_SIZE` (type invariant of `ShowBuffer`), so the cast is lossless.
        Ok(()) => buffer.len() as isize,
        Err(err) => err.to_errno() as isize,
    }
}

/// One attribute as sysfs sees it, with the way back to the data it shows.
///
/// # Invariants
///
/// Once the registration that holds it is set up, `attribute` is a `kobj_attribute` whose
/// `show` expects a slot of data type `Data`, and `data` points to that registration's data.
struct Slot<Data> {
    attribute: Opaque<bindings::kobj_attribute>,
    data: *const Data,
}

/// A kobject whose sysfs files are `kobj_attribute`s: its type uses `kobj_sysfs_ops`.
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

/// What sysfs reads while a group is registered: its attributes, their NULL-terminated list,
/// the group, and the data the attributes show.
///
/// # Invariants
///
/// Once [`Registration::new`] set it up, `group` names `name` and lists the `attributes` of
/// `slots` through `list`, each slot points to `data`, and none of this moves or changes until
/// the group is removed.
struct Group<Data, const N: usize> {
    slots: [Slot<Data>; N],
    list: List<N>,
    group: Opaque<bindings::attribute_group>,
    data: Data,
}

/// The attributes of a group as C wants them: an array of pointers ending with NULL.
///
/// Rust never reads it; C reads it through a pointer to the whole list, up to the terminator.
#[repr(C)]
struct List<const N: usize> {
    attributes: [*mut bindings::attribute; N],
    // With `repr(C)` and no padding between pointers, this is element `N` of the array.
    terminator: *mut bindings::attribute,
}

impl<const N: usize> List<N> {
    const EMPTY: Self = {
        assert!(size_of::<Self>() == (N + 1) * size_of::<*mut bindings::attribute>());
        Self {
            attributes: [ptr::null_mut(); N],
            terminator: ptr::null_mut(),
        }
    };
}

/// A directory of attributes under a [`Kobject`], and the data they show: the directory and
/// its files exist for exactly the lifetime of this value.
///
/// # Invariants
///
/// `group` is set up and registered under `parent`, and this value is what removes it.
pub struct Registration<Data: Sync, const N: usize> {
    parent: &'static Kobject,
    group: Pin<KBox<Group<Data, N>>>,
}

// SAFETY: The raw pointers point into the registration's own allocation, and the data is only
// shared with `show` calls, which need `Data: Sync`; moving the registration moves the data.
unsafe impl<Data: Sync + Send, const N: usize> Send for Registration<Data, N> {}
// SAFETY: `&Registration` gives out `&Data` only.
unsafe impl<Data: Sync, const N: usize> Sync for Registration<Data, N> {}

impl<Data: Sync, const N: usize> Registration<Data, N> {
    /// Creates the directory `name` under `parent`, with a file for each of `attributes`, in
    /// that order, showing `data`.
    ///
    /// Fails with `EEXIST` when `parent` already has an entry of that name; sysfs then also
    /// logs a warning with a stack trace, so callers that expect the name to be taken should
    /// look it up first.
    pub fn new(
        parent: &'static Kobject,
        name: &'static CStr,
        attributes: &'static [&'static Attribute<Data>; N],
        data: Data,
        flags: Flags,
    ) -> Result<Self> {
        let mut group = KBox::pin(
            Group {
                slots: [const {
                    Slot {
                        attribute: Opaque::zeroed(),
                        data: ptr::null(),
                    }
                }; N],
                list: List::EMPTY,
                group: Opaque::zeroed(),
                data,
            },
            flags,
        )?;
        // SAFETY: Nothing is moved out of the group; sysfs sees none of it yet.
        let inner = unsafe { group.as_mut().get_unchecked_mut() };
        let data: *const Data = &inner.data;
        for (slot, attribute) in inner.slots.iter_mut().zip(attributes) {
            slot.data = data;
            let raw = slot.attribute.get();
            // SAFETY: `raw` is a zeroed `kobj_attribute` of this allocation that nothing else
            // accesses; its name is a `'static` C string.
            unsafe {
                (*raw).attr.name = as_char_ptr_in_const_context(attribute.name);
                (*raw).attr.mode = attribute.mode;
                helpers::sysfs_kobj_attribute_set_show(raw, Some(attribute.show));
            }
            // What `sysfs_attr_init()` does for C: kernfs takes the key for the file's active
            // references. The key is pinned for good, so it outlives the file.
            #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
            // SAFETY: As above; `key` is a pointer field of the `attribute`.
            unsafe {
                (*raw).attr.key = attribute.key.as_ptr()
            };
        }
        // The pointers sysfs keeps are derived from the objects that contain what is read
        // through them: `show` steps back from an attribute to its slot, and sysfs reads the
        // list up to its terminator, past the `N` attributes.
        let slots = inner.slots.as_mut_ptr();
        let list = (&raw mut inner.list).cast::<*mut bindings::attribute>();
        for i in 0..N {
            // SAFETY: `i < N`, so `slots + i` is a slot of the array and `list + i` one of the
            // `N` entries before the terminator (`List` is `repr(C)`); both pointers cover what
            // they contain. Nothing else accesses the list.
            unsafe {
                let attribute = Opaque::cast_into(&raw const (*slots.add(i)).attribute);
                list.add(i).write(&raw mut (*attribute).attr);
            }
        }
        let raw = inner.group.get();
        // SAFETY: `raw` is a zeroed `attribute_group` of this allocation that nothing else
        // accesses; the name is a `'static` C string, and `list` points to the whole
        // NULL-terminated list, which lives as long as the group.
        unsafe {
            (*raw).name = as_char_ptr_in_const_context(name);
            helpers::sysfs_group_set_attrs(raw, list);
        }
        // SAFETY: `parent` is a registered kobject whose type shows `kobj_attribute`s (type
        // invariant of `Kobject`). The group, its attributes and the data they point to stay in
        // place until `Drop` removes the group, and each attribute's `show` matches its slot.
        to_result(unsafe { bindings::sysfs_create_group(parent.as_raw(), raw) })?;
        // INVARIANT: The group was set up and registered just above.
        Ok(Self { parent, group })
    }

    /// The data the attributes show.
    pub fn data(&self) -> &Data {
        &self.group.data
    }

    /// A [`Notifier`] for the file of `attribute` in this group.
    ///
    /// Fails with `ENOENT` when the group has no file of that attribute's name.
    pub fn notifier(&self, attribute: &'static Attribute<Data>) -> Result<Notifier> {
        // SAFETY: `parent` is registered in sysfs (type invariant of `Kobject`), so `sd` is its
        // directory, which lives as long as the kobject.
        let parent = unsafe { (*self.parent.as_raw()).sd };
        // SAFETY: The group is set up (type invariant), and its name is never written again.
        let name = unsafe { (*self.group.group.get()).name };
        let dir = Node::find(parent, name).ok_or(ENOENT)?;
        let file =
            Node::find(dir.as_ptr(), as_char_ptr_in_const_context(attribute.name)).ok_or(ENOENT)?;
        Ok(Notifier(file))
    }
}

impl<Data: Sync, const N: usize> Drop for Registration<Data, N> {
    /// Removes the group's files and directory, once running `show` calls have returned; the
    /// data goes after them.
    ///
    /// Open files stay open: reads answer `ENODEV`, and polls return at once.
    fn drop(&mut self) {
        // SAFETY: By the type invariant the group is registered under `parent`, and this is the
        // one place that removes it.
        unsafe { bindings::sysfs_remove_group(self.parent.as_raw(), self.group.group.get()) };
    }
}

/// A reference to a kernfs node: a sysfs directory or file.
///
/// # Invariants
///
/// This value holds one reference on the node.
struct Node(NonNull<bindings::kernfs_node>);

impl Node {
    /// The child `name` of the directory `parent` (`sysfs_get_dirent()`).
    fn find(parent: *mut bindings::kernfs_node, name: *const c_char) -> Option<Self> {
        // SAFETY: Callers pass a live directory node and a NUL-terminated name that outlive the
        // call.
        let node = unsafe { helpers::sysfs_get_dirent(parent, name) };
        // INVARIANT: `sysfs_get_dirent()` returns the node with a reference taken.
        NonNull::new(node).map(Self)
    }

    fn as_ptr(&self) -> *mut bindings::kernfs_node {
        self.0.as_ptr()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference on the node.
        unsafe { helpers::sysfs_put(self.0.as_ptr()) };
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
        // up in a group's directory, which holds files only. `sysfs_notify_dirent()` may be
        // called in any context.
        unsafe { helpers::sysfs_notify_dirent(self.0.as_ptr()) };
    }
}
