// SPDX-License-Identifier: GPL-2.0

//! The kexec handover (KHO) binding: the outgoing record this kernel leaves for the next one, and
//! the incoming record the previous kernel left for this one.
//!
//! KHO has no Rust abstraction in 7.3 and its functions are not in the bindings, so they are
//! declared here, as `reboot.rs` does for the reboot notifier, and `decls.c` checks each
//! declaration against `<linux/kexec_handover.h>` at build time; without
//! `CONFIG_KEXEC_HANDOVER` they are stubs that say KHO is off. Two safe types own what KHO hands
//! out:
//! - [`Outgoing`]: preserved memory registered as the subtree [`KHO_SUBTREE`] for exactly its
//!   lifetime; `Drop` removes the subtree and frees the memory. KHO's debugfs shows those bytes
//!   live, so every write stores the record as aligned 8-byte words (see `record.rs` for why a
//!   reader can then tell a torn copy).
//! - [`Incoming`]: the previous kernel's record, mapped for exactly its lifetime.
//!
//! The incoming record is never claimed with `kho_restore_free`: its page stays reserved for the
//! whole boot, and it is the one place that outlives this module. `finish` rewrites it in place
//! to `normal`, so a module loaded again in the same boot starts `updated` before the finish and
//! `normal` after it, and nothing ever reads memory that was freed.

use core::ptr::NonNull;

use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_ulong, c_void},
    page::PAGE_SIZE,
    prelude::*,
    str::as_char_ptr_in_const_context,
};

use crate::record::{decode, Handover, Record, RecordError, KHO_SUBTREE, RECORD_SIZE};

/// The KHO functions, exported by kernel/liveupdate/kexec_handover.c (`EXPORT_SYMBOL_GPL`);
/// `decls.c` asserts that each has the type declared here.
#[cfg(CONFIG_KEXEC_HANDOVER)]
mod kho_c {
    use kernel::{
        bindings,
        ffi::{c_char, c_int, c_void},
    };

    unsafe extern "C" {
        pub(super) fn kho_is_enabled() -> bool;
        pub(super) fn is_kho_boot() -> bool;
        pub(super) fn kho_alloc_preserve(size: usize) -> *mut c_void;
        pub(super) fn kho_unpreserve_free(mem: *mut c_void);
        pub(super) fn kho_add_subtree(name: *const c_char, blob: *mut c_void, size: usize)
            -> c_int;
        pub(super) fn kho_remove_subtree(blob: *mut c_void);
        pub(super) fn kho_retrieve_subtree(
            name: *const c_char,
            phys: *mut bindings::phys_addr_t,
            size: *mut usize,
        ) -> c_int;
    }
}
#[cfg(CONFIG_KEXEC_HANDOVER)]
use kho_c::*;

/// Without `CONFIG_KEXEC_HANDOVER` the KHO functions are inline stubs in
/// `include/linux/kexec_handover.h`, with no symbol to link against; these return what those
/// stubs return (KHO off, not a KHO boot, `EOPNOTSUPP`), so the code below reads the same in
/// both configurations. luo then serves the state, but cannot tell a live update at boot.
#[cfg(not(CONFIG_KEXEC_HANDOVER))]
mod no_kho {
    use kernel::{
        bindings,
        ffi::{c_char, c_int, c_void},
        prelude::*,
    };

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_is_enabled() -> bool {
        false
    }

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn is_kho_boot() -> bool {
        false
    }

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_alloc_preserve(_size: usize) -> *mut c_void {
        EOPNOTSUPP.to_ptr()
    }

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_unpreserve_free(_mem: *mut c_void) {}

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_add_subtree(
        _name: *const c_char,
        _blob: *mut c_void,
        _size: usize,
    ) -> c_int {
        EOPNOTSUPP.to_errno()
    }

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_remove_subtree(_blob: *mut c_void) {}

    /// # Safety
    ///
    /// None; `unsafe` only to match the C function it stands in for.
    pub(super) unsafe fn kho_retrieve_subtree(
        _name: *const c_char,
        _phys: *mut bindings::phys_addr_t,
        _size: *mut usize,
    ) -> c_int {
        EOPNOTSUPP.to_errno()
    }
}
#[cfg(not(CONFIG_KEXEC_HANDOVER))]
use no_kho::*;

/// Whether KHO is on in this boot (`kho=` or `CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT`).
pub(crate) fn enabled() -> bool {
    // SAFETY: `kho_is_enabled` only reads a flag fixed at early boot.
    unsafe { kho_is_enabled() }
}

/// The record this kernel hands over: preserved memory registered with KHO.
///
/// # Invariants
///
/// `blob` points to [`RECORD_SIZE`] bytes, 8-byte aligned, from `kho_alloc_preserve`, registered
/// as the subtree [`KHO_SUBTREE`], and nothing else writes them while this value exists.
pub(crate) struct Outgoing {
    blob: NonNull<u64>,
}

/// Stores `record` at `dst` as aligned 8-byte words, each with one store that no reader can
/// see half done; the order of the words does not matter (see `record.rs`).
///
/// # Safety
///
/// `dst` must be valid for writes of [`RECORD_SIZE`] bytes, 8-byte aligned, and no other
/// writer may store there meanwhile.
unsafe fn store(dst: NonNull<u64>, record: &Record) {
    for (i, word) in record.to_words().into_iter().enumerate() {
        // SAFETY: `i < RECORD_SIZE / 8`, so the word is within the `RECORD_SIZE` bytes the
        // caller guarantees, and aligned. A volatile aligned 8-byte store is one store
        // (`WRITE_ONCE`), which a concurrent reader of the bytes sees whole or not at all.
        unsafe { dst.as_ptr().add(i).write_volatile(word) };
    }
}

// SAFETY: The memory is owned by this value alone; KHO only reads it at the kexec jump, and
// freeing it (in `Drop`) may happen on any thread.
unsafe impl Send for Outgoing {}

impl Outgoing {
    /// Preserves a record holding `initial` and registers it under [`KHO_SUBTREE`].
    ///
    /// KHO must be [`enabled`]: `kho_add_subtree` does not check it. Fails with `EEXIST` when
    /// the name is taken. Logs nothing: the caller says what it does instead.
    pub(crate) fn register(initial: Record) -> Result<Self> {
        // SAFETY: Any size may be asked for; the result is a valid pointer or an `ERR_PTR`.
        let mem = from_err_ptr(unsafe { kho_alloc_preserve(RECORD_SIZE) })?;
        let blob = NonNull::new(mem.cast::<u64>()).ok_or(ENOMEM)?;
        // SAFETY: `kho_alloc_preserve` returned page-aligned memory of at least `RECORD_SIZE`
        // bytes that only this function knows of yet.
        unsafe { store(blob, &initial) };
        // SAFETY: The name is a NUL-terminated static that outlives the registration (it is
        // removed in `Drop`, before the module's memory goes); `mem` holds `RECORD_SIZE` bytes.
        let ret =
            unsafe { kho_add_subtree(as_char_ptr_in_const_context(KHO_SUBTREE), mem, RECORD_SIZE) };
        if let Err(err) = to_result(ret) {
            // SAFETY: `mem` came from `kho_alloc_preserve` and was never registered.
            unsafe { kho_unpreserve_free(mem) };
            return Err(err);
        }
        // INVARIANT: The memory is preserved, holds a record and is registered.
        Ok(Self { blob })
    }

    /// Replaces the record the next kernel will read.
    pub(crate) fn write(&mut self, record: Record) {
        // SAFETY: By the type invariant `blob` is valid, aligned and ours alone; `&mut self`
        // rules out a concurrent write. The next kernel reads it after the jump; KHO's debugfs
        // may read it now, which `store` allows for.
        unsafe { store(self.blob, &record) };
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mem = self.blob.as_ptr().cast::<c_void>();
        // SAFETY: By the type invariant `mem` is registered and came from `kho_alloc_preserve`;
        // it is removed from KHO before it is freed, so the next kernel is never pointed at
        // freed memory.
        unsafe {
            kho_remove_subtree(mem);
            kho_unpreserve_free(mem);
        }
    }
}

/// Why this boot has no incoming record to read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NoRecord {
    /// Not started by a kexec that carried KHO data: a cold boot, a `kexec_load`, or KHO off in
    /// the previous kernel.
    NotKhoBoot,
    /// A KHO boot, but the previous kernel left no [`KHO_SUBTREE`] (luo not loaded there).
    Absent,
    /// KHO refused the lookup, or the record could not be mapped.
    Failed(Error),
    /// The blob is too small to hold a record; refused before anything is mapped.
    Refused(RecordError),
}

/// The record the previous kernel left for this one, mapped for reading and marking.
///
/// # Invariants
///
/// `mem` maps `len` bytes of the incoming subtree [`KHO_SUBTREE`] (reserved memory, never
/// claimed or freed during this boot), with `RECORD_SIZE <= len <= PAGE_SIZE`; the mapping is
/// removed in `Drop`.
pub(crate) struct Incoming {
    mem: NonNull<u8>,
    len: usize,
}

// SAFETY: The mapping may be used and removed from any thread.
unsafe impl Send for Incoming {}

impl Incoming {
    /// Finds and maps the previous kernel's record, if this boot has one.
    pub(crate) fn find() -> core::result::Result<Self, NoRecord> {
        // SAFETY: `is_kho_boot` only reads a value fixed at early boot.
        if !unsafe { is_kho_boot() } {
            return Err(NoRecord::NotKhoBoot);
        }
        let mut phys: bindings::phys_addr_t = 0;
        let mut size: usize = 0;
        // SAFETY: The name is a NUL-terminated static; `phys` and `size` are valid for writes.
        let ret = unsafe {
            kho_retrieve_subtree(
                as_char_ptr_in_const_context(KHO_SUBTREE),
                &mut phys,
                &mut size,
            )
        };
        match to_result(ret) {
            Ok(()) => {}
            Err(err) if err == ENOENT => return Err(NoRecord::Absent),
            Err(err) => return Err(NoRecord::Failed(err)),
        }
        // A blob too small for a record is refused here: `memremap` of 0 bytes fails, and that
        // failure would read as a lack of memory.
        if size < RECORD_SIZE {
            return Err(NoRecord::Refused(RecordError::Truncated { len: size }));
        }
        // No version of the record fills more than a page; a larger size is not ours to map.
        let len = size.min(PAGE_SIZE);
        // SAFETY: `phys` and `size` describe memory the previous kernel preserved, which KHO
        // keeps reserved in this kernel; mapping it cached is how RAM is read.
        let mem = unsafe { bindings::memremap(phys, len, bindings::MEMREMAP_WB as c_ulong) };
        let mem = NonNull::new(mem.cast::<u8>()).ok_or(NoRecord::Failed(ENOMEM))?;
        // INVARIANT: `mem` maps `len` bytes of the incoming record until `Drop`.
        Ok(Self { mem, len })
    }

    /// Decodes the record.
    pub(crate) fn read(&self) -> core::result::Result<Handover, RecordError> {
        // SAFETY: By the type invariant `mem` maps `len` readable bytes; nothing writes them
        // while this shared borrow lives (`mark` takes `&mut self`).
        let bytes = unsafe { core::slice::from_raw_parts(self.mem.as_ptr(), self.len) };
        decode(bytes)
    }

    /// Overwrites the record with `record`, for later loads of the module in this boot.
    ///
    /// Written the way [`Outgoing::write`] writes, since KHO's debugfs shows this record too.
    pub(crate) fn mark(&mut self, record: Record) {
        let words = self.mem.cast::<u64>();
        // A preserved blob starts on a page; a record elsewhere was not placed by luo.
        if !words.as_ptr().is_aligned() {
            return;
        }
        // SAFETY: By the type invariant `mem` maps `len >= RECORD_SIZE` writable bytes that no
        // one else writes in this boot; it is aligned (checked above); `&mut self` rules out a
        // concurrent writer.
        unsafe { store(words, &record) };
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `mem` came from `memremap` and is unmapped only here.
        unsafe { bindings::memunmap(self.mem.as_ptr().cast()) };
    }
}
