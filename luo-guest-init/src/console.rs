//! The init's messages on the guest's console.
//!
//! Progress goes through `/dev/kmsg`, so each line carries the kernel's timestamp: that is how
//! the time from power-on to the script is read off a console log. Errors and the final status
//! go straight to the console the kernel opened as init's stderr, because `/dev/kmsg` drops
//! user messages past a rate limit and may not be there at all when a mount failed.

use std::fs::{File, OpenOptions};
use std::io::Write;

/// The prefix of every line the init prints.
const PREFIX: &str = "luo-guest-init";

/// Where the init's messages go.
pub struct Console {
    kmsg: Option<File>,
}

impl Console {
    /// Messages through `/dev/kmsg` if the kernel mounted `/dev` (`DEVTMPFS_MOUNT`), else on
    /// stderr until [`Console::open_kmsg`] finds it.
    pub fn new() -> Self {
        let mut console = Self { kmsg: None };
        console.open_kmsg();
        console
    }

    /// Sends later progress messages through `/dev/kmsg`, if it is there and not open yet.
    pub fn open_kmsg(&mut self) {
        if self.kmsg.is_none() {
            self.kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        }
    }

    /// A progress message, with the kernel's timestamp when `/dev/kmsg` is open.
    pub fn info(&mut self, message: &str) {
        // `<6>`: KERN_INFO, shown under the runner's loglevel=7.
        let sent = self.kmsg.as_mut().is_some_and(|kmsg| {
            kmsg.write_all(format!("<6>{PREFIX}: {message}\n").as_bytes())
                .is_ok()
        });
        if !sent {
            self.say(message);
        }
    }

    /// A message straight on the console.
    pub fn say(&mut self, message: &str) {
        eprintln!("{PREFIX}: {message}");
    }
}
