//! `luoctl watch`: one flushed record per observed change on stdout, and an `--exec` command
//! run per change beside the watch.
//!
//! When the transition counter (`transitions`) sits beside the state file, the watch follows
//! the counter, which the kernel notifies on every change, and reads a [`Snapshot`] at each
//! wake: every record then carries the count, and the changes it did not see (`missed`), even
//! those that brought the state back where it was. Without the counter (an older module, or a
//! state file given by hand with none beside it) it follows the state alone.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use luo_user::hooks::{self, HookEnv, Outcome};
use luo_user::{
    Decode, Error, Followed, Follower, Snapshot, State, TransitionCount, Wakeup,
    transitions_path_beside,
};

use crate::cli::WatchArgs;
use crate::exit::Failure;
use crate::record::{Record, Style};

/// What the watch follows.
enum Source {
    /// The state file alone.
    State(Follower<State>),
    /// The transition counter beside the state file, with a snapshot at each wake.
    Counted(Counted),
}

/// One thing the source saw.
enum Seen<'a> {
    /// The file went away, or is not there yet.
    Detached(Error),
    /// The file was opened and read: at the start, or again after it had gone. The record is
    /// the change from the state last seen, if there is one to report.
    Attached {
        current: State,
        transitions: Option<u64>,
        record: Option<(Record<'a>, Option<u64>)>,
    },
    /// A change to report, with the changes it does not show.
    Changed(Record<'a>, Option<u64>),
}

impl Source {
    /// The counter's follower when the counter is beside the state file, the state's otherwise.
    fn new(args: &WatchArgs) -> Source {
        let path = &args.state.state_file;
        let counter = transitions_path_beside(path);
        if counter.exists() {
            Source::Counted(Counted {
                follower: Follower::new(&counter).with_interval(args.state.interval.into()),
                counter,
                state: path.clone(),
                last: None,
                seq: 0,
            })
        } else {
            Source::State(args.state.follower())
        }
    }

    fn next_until<'a>(
        &mut self,
        deadline: Option<Instant>,
        path: &'a Path,
    ) -> luo_user::Result<Option<Seen<'a>>> {
        match self {
            Source::State(follower) => loop {
                let Some(followed) = follower.next_until(deadline)? else {
                    return Ok(None);
                };
                return Ok(Some(match followed {
                    Followed::Detached(err) => Seen::Detached(err),
                    Followed::Attached { current, change } => Seen::Attached {
                        current,
                        transitions: None,
                        record: change.map(|change| (Record::change(&change, path), None)),
                    },
                    Followed::Changed(change) => Seen::Changed(Record::change(&change, path), None),
                    // Nothing else is reported today.
                    _ => continue,
                }));
            },
            Source::Counted(counted) => counted.next_until(deadline, path),
        }
    }

    /// The state last seen.
    fn current(&self) -> Option<State> {
        match self {
            Source::State(follower) => follower.current(),
            Source::Counted(counted) => counted.last.map(|last| last.state),
        }
    }

    /// How the watch learns of a change.
    fn wakeup_words(&self) -> String {
        match self {
            Source::State(follower) => wakeup_words(follower),
            Source::Counted(counted) => format!(
                "{}; counting transitions in {}",
                wakeup_words(&counted.follower),
                counted.counter.display()
            ),
        }
    }
}

/// The watch through the transition counter.
struct Counted {
    follower: Follower<TransitionCount>,
    counter: PathBuf,
    state: PathBuf,
    /// The last snapshot read.
    last: Option<Snapshot>,
    /// The number of the last change reported.
    seq: u64,
}

impl Counted {
    fn next_until<'a>(
        &mut self,
        deadline: Option<Instant>,
        path: &'a Path,
    ) -> luo_user::Result<Option<Seen<'a>>> {
        loop {
            let Some(followed) = self.follower.next_until(deadline)? else {
                return Ok(None);
            };
            let attached = match followed {
                Followed::Detached(err) => return Ok(Some(Seen::Detached(err))),
                Followed::Attached { .. } => true,
                Followed::Changed(_) => false,
                // Nothing else is reported today.
                _ => continue,
            };
            // The counter first, then the state, so the pair is exact.
            let now = match Snapshot::read_from(&self.counter, &self.state) {
                Ok(now) => now,
                Err(err) if err.is_gone() => return Ok(Some(Seen::Detached(err))),
                Err(err) => return Err(err),
            };
            let record = self.report(now, path);
            if attached {
                return Ok(Some(Seen::Attached {
                    current: now.state,
                    transitions: Some(now.transitions),
                    record,
                }));
            }
            if let Some((record, missed)) = record {
                return Ok(Some(Seen::Changed(record, missed)));
            }
        }
    }

    /// The record of `now` against the last snapshot: a change of state, or changes that left
    /// the state where it was; `None` when nothing changed. `missed` is unknown when the count
    /// went back (the module was loaded again).
    fn report<'a>(&mut self, now: Snapshot, path: &'a Path) -> Option<(Record<'a>, Option<u64>)> {
        let last = self.last.replace(now)?;
        let missed = now.missed_since(&last);
        if now.state == last.state && missed.unwrap_or(0) == 0 {
            return None;
        }
        self.seq += 1;
        let record = Record {
            time: SystemTime::now(),
            seq: self.seq,
            prev: Some(last.state),
            state: now.state,
            path,
            transitions: Some(now.transitions),
        };
        Some((record, missed))
    }
}

/// Watches the state file until `args.count` records, the idle timeout, or an error.
pub fn run(args: &WatchArgs) -> Result<(), Failure> {
    let path = args.state.state_file.as_path();
    let style = Style::new(args.output.json, args.output.format.as_deref());
    let exec = args
        .exec
        .as_deref()
        .map(|command| Exec::start(command, args.exec_timeout.into()));
    let mut source = Source::new(args);
    let idle: Option<Duration> = args.idle_timeout.map(Into::into);
    let mut deadline = idle.and_then(|idle| Instant::now().checked_add(idle));
    let mut stdout = io::stdout().lock();
    let mut printed = 0u64;
    let mut attached_before = false;
    let result = loop {
        if args.count.is_some_and(|count| printed >= count) {
            break Ok(());
        }
        let seen = match source.next_until(deadline, path) {
            Ok(Some(seen)) => seen,
            Ok(None) => {
                break Err(Failure::TimedOut(format!(
                    "no change of {} within {} (state: {})",
                    path.display(),
                    args.idle_timeout.map(|d| d.to_string()).unwrap_or_default(),
                    source
                        .current()
                        .map_or("unknown".to_owned(), |s| s.to_string())
                )));
            }
            Err(err) => break Err(err.into()),
        };
        let (record, missed) = match seen {
            Seen::Detached(err) if args.output.follow => {
                eprintln!("luoctl: {err}; waiting for it to come back (--follow)");
                continue;
            }
            Seen::Detached(err) => break Err(err.into()),
            Seen::Attached {
                current,
                transitions,
                record,
            } => {
                let first = !attached_before;
                attached_before = true;
                if first && !args.quiet.quiet {
                    eprintln!(
                        "luoctl: watching {} (state: {current}; {})",
                        path.display(),
                        source.wakeup_words()
                    );
                } else if !first {
                    eprintln!(
                        "luoctl: {} is back (state: {current}); watching again",
                        path.display()
                    );
                }
                match record {
                    Some(record) => record,
                    None if first && args.output.initial => (
                        Record {
                            transitions,
                            ..Record::initial(current, path)
                        },
                        None,
                    ),
                    None => continue,
                }
            }
            Seen::Changed(record, missed) => (record, missed),
        };
        if let Err(err) = style.write_missed(&mut stdout, &record, missed) {
            break Err(err.into());
        }
        if let Some(exec) = &exec {
            exec.queue(&record);
        }
        printed += 1;
        deadline = idle.and_then(|idle| Instant::now().checked_add(idle));
    };
    // Let the commands of the changes already printed run.
    if let Some(exec) = exec {
        exec.finish();
    }
    result
}

fn wakeup_words<T: Decode>(follower: &Follower<T>) -> String {
    match follower.watcher().map(|w| w.file().wakeup()) {
        Some(Wakeup::Priority) => "notified by the kernel".to_owned(),
        Some(Wakeup::Inotify) => "not in sysfs, followed with inotify".to_owned(),
        Some(Wakeup::Interval(every)) => format!(
            "not in sysfs, re-read every {}",
            humantime::format_duration(every)
        ),
        _ => "no notification".to_owned(),
    }
}

/// The `--exec` command, run for each change on a thread of its own, one at a time and in
/// order, so a slow command never delays the watch or the records' times.
struct Exec {
    queue: mpsc::Sender<HookEnv>,
    worker: thread::JoinHandle<()>,
}

impl Exec {
    fn start(command: &str, timeout: Duration) -> Exec {
        let (queue, changes) = mpsc::channel::<HookEnv>();
        let command = command.to_owned();
        let worker = thread::spawn(move || {
            for env in changes {
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(&command);
                let (outcome, _) = hooks::run_command(sh, &env, timeout);
                report(&command, &env, &outcome);
            }
        });
        Exec { queue, worker }
    }

    fn queue(&self, record: &Record<'_>) {
        let env = HookEnv::new(
            record.state,
            record.prev,
            record.seq,
            record.time,
            record.path,
        );
        // The worker lives as long as the sender; a send cannot fail before `finish`.
        let _ = self.queue.send(env);
    }

    fn finish(self) {
        drop(self.queue);
        let _ = self.worker.join();
    }
}

fn report(command: &str, env: &HookEnv, outcome: &Outcome) {
    if outcome.is_success() {
        return;
    }
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "luoctl: --exec '{command}' {outcome} after change {} (to {}); still watching",
        env.seq, env.state
    );
}
