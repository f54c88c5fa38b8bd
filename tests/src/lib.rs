//! Tests that cross crates. `luo-guest-tests` runs inside a guest booted on our kernel (see
//! `cargo xtask test`); the modules here are its building blocks.

pub mod bench;
pub mod dev;
pub mod guest;
pub mod kmsg;
pub mod module;
pub mod sysfs;
pub mod v3_table;

/// A test's outcome: `Err` carries what went wrong, in words.
pub type Outcome = Result<(), String>;

/// Fails the test with a message when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
