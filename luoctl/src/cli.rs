//! The command line model: every flag, its help, and the help text on states and exit codes.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use luo_sysfs_abi::path::{DEVICE_PATH, GENERATION_PATH, STATE_PATH};
use luo_user::agent::DEFAULT_HOOK_TIMEOUT;
use luo_user::keeper::DEFAULT_SOCKET;
use luo_user::kexec::DEBUGFS;
use luo_user::{DEFAULT_INTERVAL, Follower, State, StateFile, StateSet};

use crate::exit;

/// Follow and drive a Linux live update.
///
/// luoctl reads the live update orchestrator's state from sysfs, follows its changes, waits
/// for a state, sends events to the control device, runs hooks per state, and performs the
/// live update kexec.
#[derive(Debug, Parser)]
#[command(name = "luoctl", version, after_long_help = after_long_help())]
pub struct Cli {
    /// The options each subcommand lists where it uses them, also accepted before the
    /// subcommand as they always were.
    #[command(flatten)]
    pub before: Before,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The options luoctl took before any subcommand, when they were global: still accepted there
/// (and hidden), so existing scripts keep working. clap hands a value given there to the
/// subcommand's own option of the same id, which is the one read.
#[derive(Debug, Args)]
pub struct Before {
    #[arg(long = "state-file", id = "state_file", global = true, hide = true, value_name = "PATH", env = "LUO_STATE_FILE", default_value = STATE_PATH)]
    state_file: PathBuf,
    #[arg(long = "generation-file", id = "generation_file", global = true, hide = true, value_name = "PATH", env = "LUO_GENERATION_FILE", default_value = GENERATION_PATH)]
    generation_file: PathBuf,
    #[arg(long = "device", id = "device", global = true, hide = true, value_name = "PATH", env = "LUO_DEVICE", default_value = DEVICE_PATH)]
    device: PathBuf,
    #[arg(long = "interval", id = "interval", global = true, hide = true, value_name = "DURATION", env = "LUO_INTERVAL", value_parser = duration, default_value_t = DEFAULT_INTERVAL.into())]
    interval: humantime::Duration,
    #[arg(short = 'q', long = "quiet", id = "quiet", global = true, hide = true)]
    quiet: bool,
}

/// Where the state is read.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The state attribute to read.
    #[arg(long = "state-file", id = "state_file", value_name = "PATH", env = "LUO_STATE_FILE", default_value = STATE_PATH)]
    pub state_file: PathBuf,

    /// How often to re-read a state file outside sysfs where inotify does not work, and how
    /// long a half-written one is given.
    #[arg(long = "interval", id = "interval", value_name = "DURATION", env = "LUO_INTERVAL", value_parser = duration, default_value_t = DEFAULT_INTERVAL.into())]
    pub interval: humantime::Duration,
}

impl StateArgs {
    /// Opens the state file.
    pub fn open(&self) -> luo_user::Result<StateFile> {
        StateFile::open_with_interval(&self.state_file, self.interval.into())
    }

    /// A follower of the state file.
    pub fn follower(&self) -> Follower<State> {
        Follower::new(&self.state_file).with_interval(self.interval.into())
    }
}

/// Where events are sent.
#[derive(Debug, Args)]
pub struct DeviceArg {
    /// The control device to drive.
    #[arg(long = "device", id = "device", value_name = "PATH", env = "LUO_DEVICE", default_value = DEVICE_PATH)]
    pub device: PathBuf,
}

/// Where the generation is read.
#[derive(Debug, Args)]
pub struct GenerationArg {
    /// The generation attribute to read.
    #[arg(long = "generation-file", id = "generation_file", value_name = "PATH", env = "LUO_GENERATION_FILE", default_value = GENERATION_PATH)]
    pub generation_file: PathBuf,
}

/// `-q`.
#[derive(Debug, Args)]
pub struct QuietArg {
    /// Do not print the ready line (or the summary) on stderr.
    #[arg(short = 'q', long = "quiet", id = "quiet")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the current state: one word, or {"v":1,"state":"...","transitions":N} with --json.
    ///
    /// transitions is how many times the state changed since the module started in this boot,
    /// read together with the state so that they belong to one moment; it is left out when
    /// the module is older than the counter (no transitions file beside the state file).
    State(StateCmd),

    /// Print the live update generation: how many live updates since the last cold boot.
    ///
    /// 0 after a cold boot, a plain kexec, or a boot without kexec handover; N + 1 after a live
    /// update from generation N. The kernel module reads it from the handover record the
    /// previous kernel left in kexec handover (KHO) memory.
    Generation(GenerationCmd),

    /// Print each change of state as it is observed.
    ///
    /// A ready line with the current state goes to stderr after the first read (-q drops it);
    /// then one line per change goes to stdout, flushed at once: the time the change was read
    /// (RFC 3339, UTC), the previous and the new state. Changes coalesce: two transitions
    /// between reads show as one.
    ///
    /// When the transition counter (the file transitions beside the state file) exists, watch
    /// follows it, since the kernel notifies it on every change, and reads the counter and the
    /// state together at each wake. Each record then carries transitions, the count of changes
    /// since the module started, and missed, how many changes since the previous record it
    /// does not show: 0 when it shows the only one; N when the count rose by N + 1, so N
    /// states came and went between two reads. Changes that bring the state back where it was
    /// (prepared, normal, prepared) are reported too, as a record from the state to itself
    /// with missed 2: an agent that saw only prepared then knows a second prepare happened. In
    /// text, missed shows as "(missed N)" after the states when N is not 0. missed is unknown
    /// (left out) on the first record and after the count went back (the module was loaded
    /// again). Without the counter (an older module) watch follows the state alone and the
    /// records carry neither field.
    Watch(WatchArgs),

    /// Wait until the state is one of the given states, and print it.
    ///
    /// Returns at once if the state already is one of them; otherwise prints a line on stderr
    /// once it watches (after its first read): from then on a state that lasts until luoctl
    /// reads it is seen (changes coalesce between reads).
    Wait(WaitArgs),

    /// Start a live update (normal to prepared) and print the new state.
    ///
    /// Standalone flavour: sends prepare to the control device; the agent then runs the
    /// prepared hooks, and 'luoctl kexec' waits for them. Observer flavour (mainline LUO, which
    /// has no prepare event): asks the agent (--socket) to preserve the files its workloads
    /// handed over and run the prepared hooks, and returns once they all succeeded (at most
    /// --timeout).
    Prepare(PrepareArgs),

    /// Abandon a live update (prepared or frozen to normal) and print the new state.
    ///
    /// Then unloads the kernel loaded for kexec, if one is (luoctl kexec --load-only): a later
    /// kexec reboot (systemctl kexec) would otherwise boot it as a plain reboot, which the
    /// workloads kept for the live update would not survive. --keep-loaded leaves it.
    ///
    /// Observer flavour (mainline LUO, which has no cancel event): asks the agent (--socket)
    /// to close the sessions it preserved, so their files are no longer preserved.
    Cancel(CancelArgs),

    /// End a live update after restoration (updated to normal) and print the new state.
    ///
    /// Observer flavour (mainline LUO, which has no finish event): asks the agent (--socket)
    /// to finish every session its workload said it restored, now and as each restores from
    /// then on, as it does itself once the updated hooks succeeded (after a failed one was
    /// dealt with, say). A session claimed but not restored yet, or never claimed, keeps the
    /// state updated.
    Finish(FinishArgs),

    /// Run hooks per state: the agent of a live update.
    ///
    /// Follows the state and, for each state reached, runs the executables of DIR/STATE.d/
    /// (prepared.d, frozen.d, updated.d, normal.d) in the byte order of their names, as
    /// run-parts does (names of letters, digits, _ and - only), each with a time limit and
    /// with LUO_STATE, LUO_PREV_STATE, LUO_SEQ, LUO_TIME, LUO_STATE_FILE and LUO_GENERATION in
    /// its environment; its stdout and stderr go to the agent's stderr.
    ///
    /// A failing prepared hook stops the others and sends cancel. A failing updated hook stops
    /// the others and leaves the state updated (no finish); when every updated hook succeeded,
    /// the agent sends finish (unless --no-finish). At start, the hooks of the state found run
    /// if it is prepared or updated (any state with --initial).
    ///
    /// Logs go to stderr, one line per event (no colours unless stderr is a terminal); each
    /// state acted on is printed on stdout like watch prints a change. With NOTIFY_SOCKET set
    /// (systemd Type=notify), READY=1 is sent after the first read, and STATUS= on each state.
    ///
    /// The agent listens on a local socket (--socket) where 'luoctl kexec' waits for the
    /// prepared hooks to succeed. In the observer flavour (mainline LUO), workloads also hand
    /// it their files (memfds) there: the agent preserves them in mainline sessions at
    /// 'luoctl prepare', holds the sessions until the kexec, hands the files back after it,
    /// and finishes each session its workload restored once the updated hooks succeeded. A
    /// failed prepared hook closes the sessions (mainline's cancel). Only root and the agent's
    /// own user may connect.
    Agent(AgentArgs),

    /// Reboot into KERNEL as a live update (from prepared only, with KHO on).
    ///
    /// Refuses unless the state is prepared and kexec handover (KHO) is on (DEBUGFS/kho
    /// exists). Loads KERNEL with kexec_file_load(2); its command line is the --append words,
    /// after the running kernel's (/proc/cmdline) with --reuse-cmdline. Then, unless
    /// --load-only, syncs the file systems and reboots with reboot(LINUX_REBOOT_CMD_KEXEC): the
    /// module moves prepared to frozen and hands the state over in KHO, so this does not
    /// return. It prints nothing on stdout.
    ///
    /// Before loading, it waits (at most --wait-timeout) until the agent at --socket says the
    /// prepared hooks of this prepared state all succeeded, and refuses, saying why, if one
    /// failed or no agent listens; so 'luoctl prepare && luoctl kexec KERNEL' is safe.
    /// --no-wait skips this, for a live update without an agent.
    Kexec(KexecArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff), or write one per subcommand into a directory.
    Man {
        /// Write luoctl.1 and luoctl-SUBCOMMAND.1 for every subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,

        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// The options of `state`.
#[derive(Debug, Args)]
pub struct StateCmd {
    #[command(flatten)]
    pub state: StateArgs,

    /// Print a JSON object instead of a word.
    #[arg(long)]
    pub json: bool,
}

/// The options of `generation`.
#[derive(Debug, Args)]
pub struct GenerationCmd {
    #[command(flatten)]
    pub generation: GenerationArg,

    /// Print a JSON object instead of a number.
    #[arg(long)]
    pub json: bool,
}

/// The options of `prepare` and `finish`.
#[derive(Debug, Args)]
pub struct EventArgs {
    #[command(flatten)]
    pub device: DeviceArg,

    /// Print a JSON object instead of a word.
    #[arg(long)]
    pub json: bool,
}

/// Where the agent listens.
#[derive(Debug, Args)]
pub struct SocketArg {
    /// The agent's socket.
    #[arg(long = "socket", value_name = "PATH", env = "LUO_AGENT_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// The options of `prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub event: EventArgs,

    /// Observer flavour: the state file read after the agent's answer, with the `flavour`
    /// file beside it that tells the flavours apart.
    #[command(flatten)]
    pub state: StateArgs,

    #[command(flatten)]
    pub socket: SocketArg,

    /// Observer flavour: how long to wait for the agent to preserve the files and run the
    /// prepared hooks; the agent waits 10m at most.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: humantime::Duration,
}

/// The options of `finish`.
#[derive(Debug, Args)]
pub struct FinishArgs {
    #[command(flatten)]
    pub event: EventArgs,

    /// Observer flavour: the state file read after the agent's answer, with the `flavour`
    /// file beside it that tells the flavours apart.
    #[command(flatten)]
    pub state: StateArgs,

    /// Observer flavour: the agent that finishes its sessions.
    #[command(flatten)]
    pub socket: SocketArg,
}

/// The options of `cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub event: EventArgs,

    /// Observer flavour: the state file read after the agent's answer, with the `flavour`
    /// file beside it that tells the flavours apart.
    #[command(flatten)]
    pub state: StateArgs,

    /// Leave a kernel loaded for kexec loaded after the cancel.
    #[arg(long)]
    pub keep_loaded: bool,

    /// Where the kernel says whether an image is loaded for kexec.
    #[arg(long, value_name = "PATH", env = "LUO_KEXEC_LOADED", default_value = luo_user::kexec::KEXEC_LOADED)]
    pub kexec_loaded_file: PathBuf,

    /// Observer flavour: the agent that closes its sessions.
    #[command(flatten)]
    pub socket: SocketArg,
}

/// How `watch` and `agent` print each change.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON Lines: {"v":1,"time":...,"seq":...,"prev":...,"state":...}, and for watch
    /// with the transition counter also "transitions":N and "missed":N (see above).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Print each change with this template: %t time (RFC 3339, UTC), %s state, %p previous
    /// state (- if none), %n sequence number, %f state file, %c transition count and %m
    /// changes missed (- if unknown), %% a percent sign.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Emit the current state as the first record (sequence number 0, no previous state).
    #[arg(long)]
    pub initial: bool,

    /// When the state file is absent or goes away (module unloaded), wait for it and go on
    /// when it is back, as tail -F does; say so on stderr.
    #[arg(long)]
    pub follow: bool,
}

/// The options of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub state: StateArgs,

    #[command(flatten)]
    pub quiet: QuietArg,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Exit with 0 after this many records.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,

    /// Exit with 124 when no change comes for this long (seconds, or 30s, 1m, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub idle_timeout: Option<humantime::Duration>,

    /// Run this shell command (sh -c) after each change, with LUO_STATE, LUO_PREV_STATE,
    /// LUO_SEQ, LUO_TIME and LUO_STATE_FILE in its environment. It runs beside the watch, one
    /// at a time in order, its output on stderr; a failure is reported and watching goes on.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,

    /// Stop an --exec command after this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub exec_timeout: humantime::Duration,
}

/// The options of `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The states to wait for, separated by commas.
    #[arg(
        value_name = "STATE[,STATE...]",
        value_delimiter = ',',
        required = true,
        value_parser = state_words()
    )]
    pub states: Vec<String>,

    /// Give up after this long (seconds, as for timeout(1), or 30s, 1m, 500ms) and exit
    /// with 124.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<humantime::Duration>,

    /// Print {"v":1,"state":"..."} instead of the word.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub state: StateArgs,

    #[command(flatten)]
    pub quiet: QuietArg,
}

impl WaitArgs {
    /// The states as a set.
    pub fn set(&self) -> StateSet {
        self.states
            .iter()
            .filter_map(|word| State::from_word(word.as_bytes()))
            .fold(StateSet::empty(), |set, state| set | StateSet::of(state))
    }
}

/// The options of `agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The hooks directory: DIR/prepared.d, DIR/frozen.d, DIR/updated.d, DIR/normal.d.
    #[arg(long, value_name = "DIR", env = "LUO_HOOKS_DIR")]
    pub hooks_dir: PathBuf,

    /// Stop a hook after this long (it then counts as failed).
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_HOOK_TIMEOUT.into(), value_parser = duration)]
    pub hook_timeout: humantime::Duration,

    /// Do not send finish after the updated hooks; leave it to someone else.
    #[arg(long)]
    pub no_finish: bool,

    #[command(flatten)]
    pub state: StateArgs,

    #[command(flatten)]
    pub device: DeviceArg,

    #[command(flatten)]
    pub generation: GenerationArg,

    #[command(flatten)]
    pub quiet: QuietArg,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Exit with 0 after acting on this many states.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,

    #[command(flatten)]
    pub socket: SocketArg,

    /// Do not listen on the socket: nobody can hand files over, and 'luoctl kexec' cannot
    /// wait for the hooks (it needs --no-wait then).
    #[arg(long)]
    pub no_socket: bool,
}

/// The options of `kexec`.
#[derive(Debug, Args)]
pub struct KexecArgs {
    /// The next kernel's image (a bzImage on x86, built with CONFIG_RELOCATABLE=y).
    #[arg(value_name = "KERNEL")]
    pub kernel: PathBuf,

    /// The next kernel's initrd.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,

    /// Words for the next kernel's command line (one argument, may hold spaces; may be given
    /// again). Alone, they are the whole command line.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Vec<String>,

    /// Start from the running kernel's command line (/proc/cmdline), then the --append words.
    #[arg(long)]
    pub reuse_cmdline: bool,

    /// Only load the kernel; do not reboot (for systemctl kexec).
    #[arg(long)]
    pub load_only: bool,

    /// Where debugfs is mounted (KHO is on when DEBUGFS/kho exists).
    #[arg(long, value_name = "DIR", env = "LUO_DEBUGFS", default_value = DEBUGFS)]
    pub debugfs: PathBuf,

    /// The running kernel's command line, for --reuse-cmdline.
    #[arg(long, value_name = "PATH", env = "LUO_PROC_CMDLINE", default_value = luo_user::kexec::PROC_CMDLINE)]
    pub cmdline_file: PathBuf,

    #[command(flatten)]
    pub socket: SocketArg,

    /// Do not wait for the agent's prepared hooks: for a live update without an agent.
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the agent's prepared hooks; the agent waits 10m at most.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration, conflicts_with = "no_wait")]
    pub wait_timeout: humantime::Duration,

    #[command(flatten)]
    pub state: StateArgs,
}

/// A duration: a bare number is seconds, as for timeout(1) and sleep(1) (`1`, `0.5`); with a
/// unit, humantime's syntax (`500ms`, `2m`, `1h 30m`). One too large to add to the clock is
/// refused here, so no deadline computed from it can overflow.
fn duration(text: &str) -> Result<humantime::Duration, String> {
    let parsed = match text.trim().parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("'{text}' is not a duration in seconds"))?,
        Err(_) => humantime::parse_duration(text).map_err(|err| format!("'{text}': {err}"))?,
    };
    if Instant::now().checked_add(parsed).is_none() {
        return Err(format!("'{text}' is too long a duration"));
    }
    Ok(parsed.into())
}

/// The state words a person can wait for, for validation and completion.
fn state_words() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(State::OBSERVABLE.map(State::word))
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

/// The long help's closing sections: the states, the environment and the exit statuses.
fn after_long_help() -> String {
    let mut text = String::from("States:\n");
    for state in State::OBSERVABLE {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "  {:<10}{}", state.word(), meaning(state));
    }
    text.push_str(
        "\nEnvironment:\n  \
         LUO_STATE_FILE, LUO_GENERATION_FILE, LUO_DEVICE, LUO_INTERVAL, LUO_HOOKS_DIR,\n  \
         LUO_DEBUGFS, LUO_PROC_CMDLINE, LUO_KEXEC_LOADED stand for the options of the same\n  \
         names. NO_COLOR: no colours in the agent's log.\n  \
         NOTIFY_SOCKET (set by systemd): where the agent sends READY=1.\n\nExit status:\n",
    );
    for (code, meaning) in exit::DOCUMENTED {
        let _ = writeln!(text, "  {code:<5}{meaning}");
    }
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

    #[test]
    fn an_exec_command_does_not_swallow_later_options() {
        let cli = Cli::try_parse_from(["luoctl", "watch", "--exec", "echo hi", "-n", "1"]).unwrap();
        let Command::Watch(args) = cli.command else {
            panic!("not watch");
        };
        assert_eq!(args.exec.as_deref(), Some("echo hi"));
        assert_eq!(args.count, Some(1));
    }

    #[test]
    fn the_agents_longest_wait_is_the_one_the_help_gives() {
        // `prepare --timeout` and `kexec --wait-timeout` say 10m.
        assert_eq!(luo_user::keeper::READY_LIMIT, Duration::from_secs(600));
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(duration("1"), Ok(Duration::from_secs(1).into()));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500).into()));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120).into()));
        assert!(duration("-1").is_err());
    }

    #[test]
    fn a_duration_too_long_for_the_clock_is_a_usage_error() {
        let err = Cli::try_parse_from(["luoctl", "agent", "--hook-timeout", "600000000000y"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn wait_takes_a_comma_list_of_state_words() {
        let cli = Cli::try_parse_from(["luoctl", "wait", "updated,normal"]).unwrap();
        let Command::Wait(args) = cli.command else {
            panic!("not wait");
        };
        assert_eq!(args.set(), StateSet::UPDATED | StateSet::NORMAL);
        assert!(Cli::try_parse_from(["luoctl", "wait", "sleeping"]).is_err());
    }
}
