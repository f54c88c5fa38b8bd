//! `luoctl watch`: one flushed record per observed change on stdout, and an `--exec` command
//! run per change beside the watch.

use std::io::{self, Write};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use luo_user::hooks::{self, HookEnv, Outcome};
use luo_user::{Followed, Follower, State, Wakeup};

use crate::cli::WatchArgs;
use crate::exit::Failure;
use crate::record::{Record, Style};

/// Watches the state file until `args.count` records, the idle timeout, or an error.
pub fn run(args: &WatchArgs) -> Result<(), Failure> {
    let path = args.state.state_file.as_path();
    let style = Style::new(args.output.json, args.output.format.as_deref());
    let exec = args
        .exec
        .as_deref()
        .map(|command| Exec::start(command, args.exec_timeout.into()));
    let mut follower = args.state.follower();
    let idle: Option<Duration> = args.idle_timeout.map(Into::into);
    let mut deadline = idle.and_then(|idle| Instant::now().checked_add(idle));
    let mut stdout = io::stdout().lock();
    let mut printed = 0u64;
    let mut attached_before = false;
    let result = loop {
        if args.count.is_some_and(|count| printed >= count) {
            break Ok(());
        }
        let followed = match follower.next_until(deadline) {
            Ok(Some(followed)) => followed,
            Ok(None) => {
                break Err(Failure::TimedOut(format!(
                    "no change of {} within {} (state: {})",
                    path.display(),
                    args.idle_timeout.map(|d| d.to_string()).unwrap_or_default(),
                    follower
                        .current()
                        .map_or("unknown".to_owned(), |s| s.to_string())
                )));
            }
            Err(err) => break Err(err.into()),
        };
        let record = match followed {
            Followed::Detached(err) if args.output.follow => {
                eprintln!("luoctl: {err}; waiting for it to come back (--follow)");
                continue;
            }
            Followed::Detached(err) => break Err(err.into()),
            Followed::Attached { current, change } => {
                let first = !attached_before;
                attached_before = true;
                if first && !args.quiet.quiet {
                    eprintln!(
                        "luoctl: watching {} (state: {current}; {})",
                        path.display(),
                        wakeup_words(&follower)
                    );
                } else if !first {
                    eprintln!(
                        "luoctl: {} is back (state: {current}); watching again",
                        path.display()
                    );
                }
                match change {
                    Some(change) => Record::change(&change, path),
                    None if first && args.output.initial => Record::initial(current, path),
                    None => continue,
                }
            }
            Followed::Changed(change) => Record::change(&change, path),
            // Nothing else is reported today.
            _ => continue,
        };
        if let Err(err) = style.write(&mut stdout, &record) {
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

fn wakeup_words(follower: &Follower<State>) -> String {
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
