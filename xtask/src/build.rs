//! What the guests run, built from the repository and cached: the tools (`setup`), the kernel
//! source and the kernels, `luo.ko`, the guests' init, mainline's selftests, and the ABI
//! document.
//!
//! The lowest layer above [`crate::run`]: nothing here boots a guest or knows the series.

pub mod abi_doc;
pub mod cache;
pub mod guest_init;
pub mod kbuild;
pub mod kernel;
pub mod module;
pub mod selftests;
pub mod setup;
pub mod sources;
pub mod userspace;
