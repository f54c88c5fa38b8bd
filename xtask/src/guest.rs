//! The guests: QEMU machines that boot a kernel of [`crate::build`] on the host's files and
//! run one shell script ([`runner`]), and the `vm` command that runs one command in such a
//! guest ([`vm`]).

pub mod console;
mod qemu;
pub mod runner;
pub mod vm;
