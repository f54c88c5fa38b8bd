//! `cargo xtask demo`: the main job.

use crate::run::Result;

/// Prints the state machine and the ABI from the shared crates.
pub fn run() -> Result {
    Ok(())
}
