//! The init of the QEMU guests that `cargo xtask vm` boots, and its contract with the host.
//!
//! The guest's root file system is the host's `/`, shared read-only over 9p, so this program
//! runs straight from the workspace's `target/`. As PID 1 it mounts what the tests need, runs
//! one shell script, writes the script's exit status where the host reads it, and powers the
//! guest off; or, asked by the command line (`luo_init.systemd=1`), it boots Debian's systemd
//! on an overlay of the host's root, which runs the script as a service. The library half is
//! [`protocol`]: what the host writes on the kernel command line
//! and how the exit status comes back, shared so the two sides cannot disagree.

pub mod protocol;
