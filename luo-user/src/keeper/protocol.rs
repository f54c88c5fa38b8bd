//! The keeper protocol's messages: one line of words per datagram, the verb first.
//!
//! Text, so that a person can follow it with `strace -e trace=sendmsg,recvmsg`; one datagram
//! per message (`SOCK_SEQPACKET`), so that the files passed with a message (`SCM_RIGHTS`)
//! always arrive with it.
//!
//! ```text
//! keep NAME TOKEN...        + one file per token   -> ok kept NAME COUNT
//! claim NAME TOKEN...                              -> ok claimed NAME COUNT + the files
//! restored NAME                                    -> ok restored NAME
//! prepare [TIMEOUT_MS]                             -> ok ready [TRANSITIONS] | timeout MS
//! ready [TIMEOUT_MS]                               -> ok ready [TRANSITIONS] | timeout MS
//! cancel                                           -> ok cancelled SESSIONS
//! finish                                           -> ok finished SESSIONS WAITING
//! ```
//!
//! A token appears once per request. `prepare` and `ready` carry how long the client waits
//! (the agent waits at most [`READY_LIMIT`](super::READY_LIMIT)); the agent answers `timeout`
//! with how long it waited when the hooks were not done by then, so the client tells a
//! timeout from a refusal without racing the agent's clock.
//!
//! Any request may instead be answered `error MESSAGE`, a sentence meant for a person.

use std::fmt;
use std::time::Duration;

/// The longest message, with its words; longer ones are refused.
pub const MAX_MESSAGE: usize = 4096;

/// The most files one message carries.
pub const MAX_FILES: usize = 16;

/// A request to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Keep the files that come with this message for session `name`, one per token, and
    /// preserve them at the next prepare.
    Keep {
        /// The session's name.
        name: String,
        /// The tokens, in the order of the files.
        tokens: Vec<u64>,
    },
    /// Hand back the files the previous kernel preserved in session `name` under `tokens`.
    Claim {
        /// The session's name.
        name: String,
        /// The tokens, in the order the files are wanted.
        tokens: Vec<u64>,
    },
    /// The claimed session `name` was restored: the agent may finish it.
    Restored {
        /// The session's name.
        name: String,
    },
    /// Observer flavour: preserve every kept file, run the prepared hooks, answer when ready.
    Prepare {
        /// How long the client waits (the agent waits at most this long); `None`: the
        /// agent's own limit.
        timeout: Option<Duration>,
    },
    /// Answer once the prepared hooks of the current `prepared` state all succeeded.
    Ready {
        /// How long the client waits (the agent waits at most this long); `None`: the
        /// agent's own limit.
        timeout: Option<Duration>,
    },
    /// Observer flavour: close the outgoing sessions, so their files are no longer preserved
    /// (mainline's cancel); the files stay kept for a later prepare.
    Cancel,
    /// Observer flavour: a person's finish (after a failed updated hook was dealt with):
    /// finish every restored incoming session now, and each one restored from now on.
    Finish,
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The files were taken; `count` of them.
    Kept {
        /// The session's name.
        name: String,
        /// How many files.
        count: usize,
    },
    /// The files follow this message; `count` of them.
    Claimed {
        /// The session's name.
        name: String,
        /// How many files.
        count: usize,
    },
    /// The session will be finished (now, or once the updated hooks succeed).
    Restored {
        /// The session's name.
        name: String,
    },
    /// Every prepared hook of this `prepared` state succeeded; the kexec may go.
    Ready {
        /// The transition count at which the state was `prepared`, when the kernel counts.
        transitions: Option<u64>,
    },
    /// The outgoing sessions were closed; this many.
    Cancelled {
        /// How many sessions.
        sessions: usize,
    },
    /// The restored incoming sessions were finished; claimed ones not restored yet wait.
    Finished {
        /// How many sessions were finished now.
        sessions: usize,
        /// How many claimed sessions wait for their workload's restore.
        waiting: usize,
    },
    /// The prepared hooks were not done within the wait, which lasted this long.
    TimedOut {
        /// How long the agent waited.
        after: Duration,
    },
    /// The request failed; the text says why and what to do.
    Error(String),
}

/// A message that does not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

/// Whether `name` can be a session's name in this protocol: 1 to 63 bytes of ASCII letters,
/// digits, `.`, `_` and `-` (the kernel takes any byte but NUL; words must not hold spaces).
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keep { name, tokens } => write_words(f, "keep", name, tokens),
            Self::Claim { name, tokens } => write_words(f, "claim", name, tokens),
            Self::Restored { name } => write!(f, "restored {name}"),
            Self::Prepare { timeout } => write_wait(f, "prepare", *timeout),
            Self::Ready { timeout } => write_wait(f, "ready", *timeout),
            Self::Cancel => f.write_str("cancel"),
            Self::Finish => f.write_str("finish"),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kept { name, count } => write!(f, "ok kept {name} {count}"),
            Self::Claimed { name, count } => write!(f, "ok claimed {name} {count}"),
            Self::Restored { name } => write!(f, "ok restored {name}"),
            Self::Ready {
                transitions: Some(n),
            } => write!(f, "ok ready {n}"),
            Self::Ready { transitions: None } => f.write_str("ok ready"),
            Self::Cancelled { sessions } => write!(f, "ok cancelled {sessions}"),
            Self::Finished { sessions, waiting } => write!(f, "ok finished {sessions} {waiting}"),
            Self::TimedOut { after } => write!(f, "timeout {}", millis(*after)),
            // One line: the message is a datagram, but a person reads it in a log.
            Self::Error(text) => write!(f, "error {}", text.replace('\n', " ")),
        }
    }
}

fn write_words(f: &mut fmt::Formatter<'_>, verb: &str, name: &str, tokens: &[u64]) -> fmt::Result {
    write!(f, "{verb} {name}")?;
    tokens.iter().try_for_each(|token| write!(f, " {token}"))
}

fn write_wait(f: &mut fmt::Formatter<'_>, verb: &str, timeout: Option<Duration>) -> fmt::Result {
    match timeout {
        Some(timeout) => write!(f, "{verb} {}", millis(timeout)),
        None => f.write_str(verb),
    }
}

/// `duration` in whole milliseconds, as the protocol carries it (saturating: a client's wait
/// of centuries is the agent's limit anyway).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Request {
    /// Parses one message.
    pub fn parse(text: &str) -> Result<Self, Malformed> {
        let mut words = text.split(' ');
        let verb = words.next().unwrap_or_default();
        let request = match verb {
            "keep" | "claim" => {
                let name = name(words.next(), verb)?;
                let tokens = words.by_ref().map(token).collect::<Result<Vec<_>, _>>()?;
                if tokens.is_empty() || tokens.len() > MAX_FILES {
                    return Err(Malformed(format!(
                        "'{verb}' takes 1 to {MAX_FILES} tokens, not {}",
                        tokens.len()
                    )));
                }
                // A token names one file of the session: twice in `keep`, the second preserve
                // of it would fail at every prepare, for every workload; twice in `claim`, the
                // second retrieve fails.
                if let Some(twice) = tokens
                    .iter()
                    .enumerate()
                    .find_map(|(i, token)| tokens[..i].contains(token).then_some(token))
                {
                    return Err(Malformed(format!(
                        "token {twice} is given twice; each file of a session has a token of \
                         its own"
                    )));
                }
                if verb == "keep" {
                    Self::Keep { name, tokens }
                } else {
                    Self::Claim { name, tokens }
                }
            }
            "restored" => Self::Restored {
                name: name(words.next(), verb)?,
            },
            "prepare" => Self::Prepare {
                timeout: words.next().map(timeout).transpose()?,
            },
            "ready" => Self::Ready {
                timeout: words.next().map(timeout).transpose()?,
            },
            "cancel" => Self::Cancel,
            "finish" => Self::Finish,
            _ => return Err(Malformed(format!("unknown request '{}'", clip(verb)))),
        };
        match words.next() {
            Some(extra) if !matches!(request, Self::Keep { .. } | Self::Claim { .. }) => Err(
                Malformed(format!("'{verb}' takes no word '{}'", clip(extra))),
            ),
            _ => Ok(request),
        }
    }
}

impl Reply {
    /// Parses one message.
    pub fn parse(text: &str) -> Result<Self, Malformed> {
        if let Some(message) = text.strip_prefix("error ") {
            return Ok(Self::Error(message.to_owned()));
        }
        let words: Vec<&str> = text.split(' ').collect();
        let count = |word: &str| {
            word.parse::<usize>()
                .map_err(|_| Malformed(format!("not a count: '{}'", clip(word))))
        };
        match words.as_slice() {
            ["ok", "kept", n, c] => Ok(Self::Kept {
                name: name(Some(n), "kept")?,
                count: count(c)?,
            }),
            ["ok", "claimed", n, c] => Ok(Self::Claimed {
                name: name(Some(n), "claimed")?,
                count: count(c)?,
            }),
            ["ok", "restored", n] => Ok(Self::Restored {
                name: name(Some(n), "restored")?,
            }),
            ["ok", "ready"] => Ok(Self::Ready { transitions: None }),
            ["ok", "ready", n] => Ok(Self::Ready {
                transitions: Some(token(n)?),
            }),
            ["ok", "cancelled", n] => Ok(Self::Cancelled {
                sessions: count(n)?,
            }),
            ["ok", "finished", n, w] => Ok(Self::Finished {
                sessions: count(n)?,
                waiting: count(w)?,
            }),
            ["timeout", ms] => Ok(Self::TimedOut {
                after: timeout(ms)?,
            }),
            _ => Err(Malformed(format!("unknown reply '{}'", clip(text)))),
        }
    }
}

fn name(word: Option<&str>, verb: &str) -> Result<String, Malformed> {
    match word {
        Some(name) if valid_name(name) => Ok(name.to_owned()),
        Some(name) => Err(Malformed(format!(
            "'{}' is not a session name: 1 to 63 letters, digits, '.', '_' or '-'",
            clip(name)
        ))),
        None => Err(Malformed(format!("'{verb}' needs a session name"))),
    }
}

fn timeout(word: &str) -> Result<Duration, Malformed> {
    word.parse()
        .map(Duration::from_millis)
        .map_err(|_| Malformed(format!("not a time in milliseconds: '{}'", clip(word))))
}

fn token(word: &str) -> Result<u64, Malformed> {
    word.parse()
        .map_err(|_| Malformed(format!("not a token (a number): '{}'", clip(word))))
}

/// At most 64 bytes of a peer's word, cut on a character boundary: an error quotes it.
fn clip(word: &str) -> &str {
    let mut end = word.len().min(64);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_as_written() {
        let requests = [
            Request::Keep {
                name: "vm-1".into(),
                tokens: vec![1, 2, u64::MAX],
            },
            Request::Claim {
                name: "vm_1.a".into(),
                tokens: vec![7],
            },
            Request::Restored { name: "x".into() },
            Request::Prepare { timeout: None },
            Request::Prepare {
                timeout: Some(Duration::from_secs(600)),
            },
            Request::Ready { timeout: None },
            Request::Ready {
                timeout: Some(Duration::from_millis(1500)),
            },
            Request::Cancel,
            Request::Finish,
        ];
        for request in requests {
            assert_eq!(Request::parse(&request.to_string()), Ok(request));
        }
    }

    #[test]
    fn replies_read_back_as_written() {
        let replies = [
            Reply::Kept {
                name: "a".into(),
                count: 2,
            },
            Reply::Claimed {
                name: "a".into(),
                count: 1,
            },
            Reply::Restored { name: "a".into() },
            Reply::Ready {
                transitions: Some(4),
            },
            Reply::Ready { transitions: None },
            Reply::Cancelled { sessions: 2 },
            Reply::Finished {
                sessions: 1,
                waiting: 2,
            },
            Reply::TimedOut {
                after: Duration::from_secs(120),
            },
            Reply::Error("no such session 'a'".into()),
        ];
        for reply in replies {
            assert_eq!(Reply::parse(&reply.to_string()), Ok(reply));
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        for (text, why) in [
            ("", "unknown request"),
            ("keep", "needs a session name"),
            ("keep a", "1 to 16 tokens"),
            ("keep a b", "not a token"),
            ("keep a/b 1", "not a session name"),
            ("claim a 1 -2", "not a token"),
            ("prepare now", "not a time in milliseconds"),
            ("ready 10 20", "takes no word"),
            ("finish now", "takes no word"),
            ("keep a 1 2 1", "token 1 is given twice"),
            ("claim a 7 7", "token 7 is given twice"),
            ("restored", "needs a session name"),
            ("KEEP a 1", "unknown request"),
        ] {
            let err = Request::parse(text).unwrap_err();
            assert!(err.0.contains(why), "{text:?}: {err}");
        }
        let many = format!("keep a{}", " 1".repeat(MAX_FILES + 1));
        assert!(Request::parse(&many).is_err());
    }

    #[test]
    fn names_are_what_the_kernel_takes_and_a_word_holds() {
        assert!(valid_name(&"a".repeat(63)));
        assert!(!valid_name(&"a".repeat(64)));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("é"));
    }

    #[test]
    fn an_error_reply_is_one_line() {
        let reply = Reply::Error("two\nlines".into());
        assert_eq!(reply.to_string(), "error two lines");
    }
}
