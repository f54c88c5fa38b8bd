//! The three primitives [`crate::StateCell`] is built from, in one place so that each build
//! picks its own implementation: `core`'s atomics in userspace, loom's under `cfg(loom)` (the
//! model checker explores every interleaving and every weak-memory outcome), and the kernel's
//! own LKMM primitives when the module compiles this file (`cfg(luo_kernel)`).
//!
//! | here | C11 / loom | kernel |
//! |---|---|---|
//! | [`Word::load`], [`Word::store`] (64 bits) | `Relaxed` load, store | `atomic64_read`, `_set` |
//! | [`write_barrier`] | `fence(Release)` | `smp_wmb()` (Rust: `smp_mb(Write)`) |
//! | [`read_barrier`] | `fence(Acquire)` | `smp_rmb()` (Rust: `smp_mb(Read)`) |
//!
//! `smp_wmb` only orders stores against later stores, which is weaker than a release fence in
//! general, but is all the message-passing pattern needs; the litmus tests in
//! `Documentation/litmus/` check the kernel side under the LKMM.

pub(crate) use imp::{read_barrier, write_barrier, Word};

#[cfg(not(luo_kernel))]
mod imp {
    #[cfg(not(loom))]
    use core::sync::atomic::{fence, AtomicU64, Ordering};
    #[cfg(loom)]
    use loom::sync::atomic::{fence, AtomicU64, Ordering};

    /// A 64-bit word accessed with relaxed (`*_ONCE`) loads and stores, each single-copy
    /// atomic.
    pub(crate) struct Word(AtomicU64);

    impl Word {
        #[cfg(not(loom))]
        pub(crate) const fn new(value: u64) -> Self {
            Word(AtomicU64::new(value))
        }

        // loom's atomics register with the running model, so they cannot be built in a const.
        #[cfg(loom)]
        pub(crate) fn new(value: u64) -> Self {
            Word(AtomicU64::new(value))
        }

        pub(crate) fn load(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }

        pub(crate) fn store(&self, value: u64) {
            self.0.store(value, Ordering::Relaxed);
        }
    }

    pub(crate) fn write_barrier() {
        fence(Ordering::Release);
    }

    pub(crate) fn read_barrier() {
        fence(Ordering::Acquire);
    }
}

#[cfg(luo_kernel)]
mod imp {
    use kernel::sync::atomic::{Atomic, Relaxed};
    use kernel::sync::barrier::{smp_mb, Read, Write};

    /// A 64-bit word accessed with `READ_ONCE`/`WRITE_ONCE` semantics (`atomic64_read`,
    /// `atomic64_set`: single-copy atomic on every architecture, 32-bit ones included).
    pub(crate) struct Word(Atomic<u64>);

    impl Word {
        pub(crate) const fn new(value: u64) -> Self {
            Word(Atomic::new(value))
        }

        pub(crate) fn load(&self) -> u64 {
            self.0.load(Relaxed)
        }

        pub(crate) fn store(&self, value: u64) {
            self.0.store(value, Relaxed);
        }
    }

    /// `smp_wmb()`.
    pub(crate) fn write_barrier() {
        smp_mb(Write);
    }

    /// `smp_rmb()`.
    pub(crate) fn read_barrier() {
        smp_mb(Read);
    }
}
