//! A `luoctl` child whose stdout and stderr lines are read as they come, for the tests that
//! drive the module while `luoctl watch` or `luoctl agent` runs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: records.
    Out,
    /// Standard error: the ready line and the log.
    Err,
}

/// A running child and every line it printed so far.
pub struct Lines {
    child: Child,
    rx: mpsc::Receiver<(Stream, String)>,
    /// Every line read, in the order read.
    pub seen: Vec<(Stream, String)>,
}

impl Lines {
    /// Starts `luoctl ARGS` with its output piped.
    pub fn spawn(luoctl: &Path, args: &[&str]) -> Result<Lines, String> {
        Self::spawn_with_env(luoctl, args, &[])
    }

    /// Starts `luoctl ARGS` with its output piped and `env` added to its environment.
    pub fn spawn_with_env(
        luoctl: &Path,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Result<Lines, String> {
        let mut child = Command::new(luoctl)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("spawning luoctl {args:?}: {err}"))?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().ok_or("no stdout")?;
        let err = child.stderr.take().ok_or("no stderr")?;
        forward(out, Stream::Out, tx.clone());
        forward(err, Stream::Err, tx);
        Ok(Lines {
            child,
            rx,
            seen: Vec::new(),
        })
    }

    /// Waits at most `limit` for a line of `stream` that contains `text`; returns it.
    pub fn expect(
        &mut self,
        stream: Stream,
        text: &str,
        limit: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((from, line)) => {
                    self.seen.push((from, line.clone()));
                    if from == stream && line.contains(text) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "no {stream:?} line with {text:?} within {limit:?}; lines so far:\n{}",
                        self.transcript()
                    ));
                }
            }
        }
    }

    /// Every line so far, one per line, prefixed with its stream.
    pub fn transcript(&self) -> String {
        self.seen
            .iter()
            .map(|(stream, line)| format!("  {stream:?}: {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits at most `limit` for the child to exit, collecting the rest of its lines.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(line) = self.rx.try_recv() {
                self.seen.push(line);
            }
            if let Some(status) = self.child.try_wait().map_err(|err| err.to_string())? {
                // The readers end at the pipes' end: take what they still hold.
                thread::sleep(Duration::from_millis(100));
                while let Ok(line) = self.rx.try_recv() {
                    self.seen.push(line);
                }
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "luoctl did not exit within {limit:?}; lines:\n{}",
                    self.transcript()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(pipe: impl Read + Send + 'static, stream: Stream, tx: mpsc::Sender<(Stream, String)>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send((stream, line)).is_err() {
                break;
            }
        }
    });
}

/// CPU time (user + system) a process has used, in clock ticks, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|err| format!("/proc/{pid}/stat: {err}"))?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name and state.
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}: {stat}"))
    };
    Ok(field(11)? + field(12)?)
}

/// Runs `luoctl COMMAND` to completion and fails with its stderr unless it exits 0.
pub fn run_ok(luoctl: &Path, command: &str) -> crate::Outcome {
    let out = Command::new(luoctl)
        .arg(command)
        .output()
        .map_err(|err| format!("luoctl {command}: {err}"))?;
    crate::ensure!(
        out.status.success(),
        "luoctl {command} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
