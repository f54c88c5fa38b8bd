//! The command line model: every flag, its help, and the help text on states and exit codes.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use luo_sysfs_abi::path::{DEVICE_PATH, STATE_PATH};
use luo_user::handover::PROC_CMDLINE;
use luo_user::kexec::DEFAULT_PROGRAM;
use luo_user::{DEFAULT_INTERVAL, State, StateSet};

/// Exit status: done (the state was reached, or the changes were seen).
pub const EXIT_OK: u8 = 0;
/// Exit status: an error; the message names the path and what to do.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the command line is wrong (clap's own status).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the time ran out, as with coreutils `timeout`.
pub const EXIT_TIMEOUT: u8 = 124;

/// Follow and drive a Linux live update.
///
/// luoctl reads the live update orchestrator's state from sysfs, follows its changes, waits
/// for a state, sends events to the control device, and performs the live update kexec.
#[derive(Debug, Parser)]
#[command(name = "luoctl", version, after_long_help = after_long_help())]
pub struct Cli {
    /// The state attribute to read.
    #[arg(long, global = true, value_name = "PATH", env = "LUO_STATE_FILE", default_value = STATE_PATH)]
    pub state_file: PathBuf,

    /// The control device to drive.
    #[arg(long, global = true, value_name = "PATH", env = "LUO_DEVICE", default_value = DEVICE_PATH)]
    pub device: PathBuf,

    /// How often to re-read a state file that is not in sysfs (such a file sends no
    /// notifications).
    #[arg(long, global = true, value_name = "DURATION", default_value_t = DEFAULT_INTERVAL.into())]
    pub interval: humantime::Duration,

    /// The running kernel's command line, read by handover and kexec (a copy of
    /// /proc/cmdline, for tests and containers).
    #[arg(long, global = true, value_name = "PATH", env = "LUO_PROC_CMDLINE", default_value = PROC_CMDLINE)]
    pub cmdline_file: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the current state: one word, or {"state":"..."} with --json.
    State {
        /// Print a JSON object instead of a word.
        #[arg(long)]
        json: bool,
    },

    /// Print each change of state as it is observed.
    ///
    /// A ready line with the current state goes to stderr after the first read; then one line
    /// per change goes to stdout, flushed at once: the time (RFC 3339, UTC), the previous and
    /// the new state. Changes coalesce: two transitions between reads show as one.
    Watch(WatchArgs),

    /// Wait until the state is one of the given states, and print it.
    ///
    /// Returns at once if the state already is one of them; otherwise prints a line on stderr
    /// once it watches (after its first read), so a script knows no change can be missed.
    Wait {
        /// The states to wait for, separated by commas.
        #[arg(value_name = "STATE[,STATE...]", value_parser = parse_states)]
        states: StateSet,

        /// Give up after this long (30s, 1m, 500ms) and exit with 124.
        #[arg(long, value_name = "DURATION")]
        timeout: Option<humantime::Duration>,
    },

    /// Start a live update (normal to prepared) and print the new state.
    Prepare,

    /// Abandon a live update (prepared or frozen to normal) and print the new state.
    ///
    /// Also unloads a kernel loaded for kexec (`kexec -u`, when kexec-tools is installed):
    /// the live update's next kernel carries the handover marker and must not be booted by a
    /// later plain kexec.
    Cancel,

    /// End a live update after restoration (updated to normal) and print the new state.
    Finish,

    /// Print the live update generation of the running kernel: 0 after a cold boot.
    ///
    /// Reads the luo.handover=N marker that the live update kexec puts on the next kernel's
    /// command line; the module takes it as its handover parameter:
    /// insmod luo.ko handover=$(luoctl handover). A malformed marker is an error (exit 1).
    Handover,

    /// Reboot into KERNEL as a live update (from prepared only).
    ///
    /// Refuses unless the state is prepared. Loads KERNEL with
    /// kexec -l KERNEL --command-line=CMDLINE [--initrd=FILE], where CMDLINE is the running
    /// kernel's command line without its luo.handover= marker, then the --append words, then
    /// luo.handover=N+1 (N: the running kernel's generation). Then, unless --load-only, runs
    /// kexec -e: the module moves prepared to frozen and the machine reboots, so this does not
    /// return. If kexec -e returns, the error carries kexec's message and the state (exit 1).
    Kexec(KexecArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    Man,
}

/// The options of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print JSON Lines: {"time":...,"seq":...,"prev":...,"state":...}.
    #[arg(long)]
    pub json: bool,

    /// Exit with 0 after this many changes.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,

    /// Exit with 124 when no change comes for this long (30s, 1m, 500ms).
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<humantime::Duration>,

    /// Run this command after each change, with LUO_STATE, LUO_PREV_STATE and LUO_SEQ in its
    /// environment; a failing command is reported and watching goes on. Takes the rest of the
    /// line, so put it last.
    #[arg(
        long,
        value_name = "CMD",
        num_args = 1..,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub exec: Vec<OsString>,
}

/// The options of `kexec`.
#[derive(Debug, Args)]
pub struct KexecArgs {
    /// The next kernel's image (a bzImage on x86).
    #[arg(value_name = "KERNEL")]
    pub kernel: PathBuf,

    /// The next kernel's initrd.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,

    /// Words to add to the next kernel's parameters (one argument, split at spaces; may be
    /// given again).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Vec<String>,

    /// Only load the kernel (kexec -l); do not reboot.
    #[arg(long)]
    pub load_only: bool,

    /// The kexec program of kexec-tools.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PROGRAM)]
    pub kexec_bin: PathBuf,
}

fn parse_states(list: &str) -> Result<StateSet, String> {
    StateSet::parse_list(list).map_err(|err| err.to_string())
}

/// What a state means to someone at the command line.
fn meaning(state: State) -> &'static str {
    match state {
        State::Undefined => "the orchestrator has not initialised (never shown)",
        State::Normal => "no live update is under way",
        State::Prepared => "a live update was requested; agents save what the next kernel needs",
        State::Frozen => "the kexec reboot is under way: the blackout window",
        State::Updated => "booted by a live update; agents restore, then send finish",
    }
}

/// The long help's closing sections: the states and the exit statuses.
fn after_long_help() -> String {
    let mut text = String::from("States:\n");
    for state in State::OBSERVABLE {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "  {:<10}{}", state.word(), meaning(state));
    }
    let _ = write!(
        text,
        "\nExit status:\n  \
         {EXIT_OK:<5}success\n  \
         {EXIT_ERROR:<5}error (the message names the path and what to do)\n  \
         {EXIT_USAGE:<5}usage error\n  \
         {EXIT_TIMEOUT:<5}timed out (wait --timeout, watch --idle-timeout)\n"
    );
    text
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_clap_model_is_consistent() {
        Cli::command().debug_assert();
    }
}
