//! The contract between the host's guest runner (`cargo xtask vm`) and the guest's init.
//!
//! Everything the init needs travels on the kernel command line, because a kexec inside the
//! guest (`luoctl kexec`, `kexec --reuse-cmdline`) boots the next kernel with the running one's
//! command line and nothing else: the second boot must find the same script, working directory
//! and writable shares there. The words are dotted (`luo_init.script=...`) so the kernel keeps
//! them out of init's environment and arguments; the init reads them from `/proc/cmdline`.
//!
//! What comes back: the command's standard output on the virtio port [`STDOUT_PORT`], and its
//! exit status as one [`status_line`] on the port [`STATUS_PORT`], which nothing else writes,
//! so no output of the command can pass for it.

use std::fmt;

/// The script the init runs with `sh` (a host path; the guest's root is the host's `/`).
pub const SCRIPT_WORD: &str = "luo_init.script";
/// The directory the script runs in.
pub const CWD_WORD: &str = "luo_init.cwd";
/// A writable 9p share, `TAG:PATH`: mounted at `PATH`, the same path as on the host.
pub const SHARE_WORD: &str = "luo_init.rw";
/// A host directory the script reads, kept visible at its path (see [`Config::keep`]).
pub const KEEP_WORD: &str = "luo_init.keep";
/// `luo_init.systemd=1`: boot Debian's systemd as PID 1 on an overlay of the host's root, and
/// run the script as the service [`SYSTEMD_SERVICE`] (see [`Config::systemd`]).
pub const SYSTEMD_WORD: &str = "luo_init.systemd";
/// The unit systemd starts instead of the host's default target (`systemd.unit=`): it pulls in
/// [`SYSTEMD_SERVICE`], journald and `multi-user.target`, whose host wants are cut.
pub const SYSTEMD_TARGET: &str = "luo-guest.target";
/// The service that runs the script under systemd (`luo-guest-init --service`).
pub const SYSTEMD_SERVICE: &str = "luo-guest.service";
/// systemd's own words for the systemd mode: the test target as the boot's goal, and the
/// journal forwarded to the console, because the guest's journal lives in a tmpfs that a
/// kexec or the power-off loses: the console is what the host keeps.
///
/// systemd's own status lines (`[  OK  ] Started ...`) are off but for errors: journald's
/// forwarded lines say the same with the kernel's timestamp, and every byte on the emulated
/// serial console costs time.
pub const SYSTEMD_WORDS: &[&str] = &[
    "systemd.unit=luo-guest.target",
    "systemd.journald.forward_to_console=1",
    "systemd.show_status=error",
];
/// The script's environment variable that says where it runs in the systemd mode: `setup`
/// (chrooted into the overlay before systemd starts: install units, enable them) or `service`
/// (as [`SYSTEMD_SERVICE`] under systemd). Unset in the plain mode.
pub const PHASE_VAR: &str = "LUO_GUEST_PHASE";
/// The name of the virtio port that carries the command's standard output.
pub const STDOUT_PORT: &str = "luo.stdout";
/// The name of the virtio port that carries the exit status.
pub const STATUS_PORT: &str = "luo.status";
/// The 9p mount options of the root and of the shares: 9p2000.L over virtio, the host's
/// permissions as they are (`access=any` with QEMU's `security_model=none`), and the largest
/// messages the virtio transport takes (500 KiB; a larger `msize` is cut to this with a
/// warning on the console). No cache: what the guest writes is on the host at once.
pub const NINEP_OPTIONS: &str = "trans=virtio,version=9p2000.L,access=any,msize=512000";

/// The word that ends the kernel's parameters; what follows belongs to init's `argv`.
const END_OF_PARAMETERS: &str = "--";

/// A writable host directory shared with the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// The 9p mount tag (QEMU's `mount_tag`); no `:`, no whitespace.
    pub tag: String,
    /// Where it is on the host, and so where the init mounts it in the guest.
    pub path: String,
}

/// What the init does: run `sh SCRIPT` in `cwd` after mounting the shares.
///
/// The script, its working directory and the directories of `keep` are host paths that the
/// guest sees read-only through its root, also where the init mounts scratch space over the
/// host's directory (a checkout under `/tmp`): the init binds them back at their paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The script's path.
    pub script: String,
    /// The working directory of the script.
    pub cwd: String,
    /// The writable shares.
    pub shares: Vec<Share>,
    /// Other host directories the script reads (the kernel it boots with kexec, say).
    pub keep: Vec<String>,
    /// Whether Debian's systemd is PID 1: the init makes an overlay with a tmpfs upper layer
    /// over the host's root, runs the script once in it before systemd (the setup phase, see
    /// [`PHASE_VAR`]), then executes systemd, which runs the script again as a service and
    /// powers off when it is done.
    pub systemd: bool,
}

/// What is wrong with a configuration or a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A path cannot be written on the kernel command line.
    Unwritable {
        /// What the path is for.
        what: &'static str,
        /// The path.
        value: String,
    },
    /// A required word is not on the command line.
    Missing(&'static str),
    /// A word that may appear once appears twice.
    Twice(&'static str),
    /// A share word without its `TAG:` or path.
    BadShare(String),
    /// The status port held something else than one status line.
    BadStatus(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unwritable { what, value } => write!(
                f,
                "the {what} {value:?} cannot go on the kernel command line: it must be an \
                 absolute path without double quotes or control characters; move it"
            ),
            Self::Missing(word) => write!(
                f,
                "the kernel command line has no {word}= (was this kernel booted by `cargo xtask vm`?)"
            ),
            Self::Twice(word) => write!(
                f,
                "the kernel command line has {word}= twice; the guest runner writes it once"
            ),
            Self::BadShare(word) => write!(
                f,
                "'{word}' is not a share: {SHARE_WORD}= takes TAG:/ABSOLUTE/PATH"
            ),
            Self::BadStatus(text) => {
                write!(f, "the status port held {text:?}, not one line 'exit N'")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

impl Config {
    /// The kernel command line words that carry this configuration.
    pub fn words(&self) -> Result<Vec<String>, ProtocolError> {
        let mut words = vec![
            word(SCRIPT_WORD, checked("script", &self.script)?),
            word(CWD_WORD, checked("working directory", &self.cwd)?),
        ];
        for share in &self.shares {
            if share.tag.is_empty()
                || share
                    .tag
                    .chars()
                    .any(|c| c == ':' || c == '"' || c.is_whitespace() || c.is_control())
            {
                return Err(ProtocolError::Unwritable {
                    what: "share tag",
                    value: share.tag.clone(),
                });
            }
            let path = checked("shared directory", &share.path)?;
            words.push(word(SHARE_WORD, &format!("{}:{path}", share.tag)));
        }
        for dir in &self.keep {
            words.push(word(KEEP_WORD, checked("kept directory", dir)?));
        }
        if self.systemd {
            words.push(word(SYSTEMD_WORD, "1"));
            words.extend(SYSTEMD_WORDS.iter().map(|w| (*w).to_owned()));
        }
        Ok(words)
    }

    /// Reads the configuration from a kernel command line (`/proc/cmdline`), ignoring every
    /// other word, and the words after `--`.
    pub fn from_cmdline(cmdline: &str) -> Result<Self, ProtocolError> {
        let (mut script, mut cwd, mut shares, mut keep) = (None, None, Vec::new(), Vec::new());
        let mut systemd = false;
        for raw in kernel_words(cmdline) {
            if raw == END_OF_PARAMETERS {
                break;
            }
            let Some((name, value)) = parameter(raw) else {
                continue;
            };
            match name {
                SCRIPT_WORD => set_once(&mut script, SCRIPT_WORD, value)?,
                CWD_WORD => set_once(&mut cwd, CWD_WORD, value)?,
                SHARE_WORD => {
                    let (tag, path) = value
                        .split_once(':')
                        .filter(|(tag, path)| !tag.is_empty() && path.starts_with('/'))
                        .ok_or_else(|| ProtocolError::BadShare(raw.to_owned()))?;
                    shares.push(Share {
                        tag: tag.to_owned(),
                        path: path.to_owned(),
                    });
                }
                KEEP_WORD => keep.push(value.to_owned()),
                SYSTEMD_WORD => systemd = value == "1",
                _ => {}
            }
        }
        Ok(Self {
            script: script.ok_or(ProtocolError::Missing(SCRIPT_WORD))?,
            cwd: cwd.ok_or(ProtocolError::Missing(CWD_WORD))?,
            shares,
            keep,
            systemd,
        })
    }
}

/// The line the init writes on the status port: `exit N`.
pub fn status_line(code: i32) -> String {
    format!("exit {code}\n")
}

/// The exit status in what the status port received: exactly one [`status_line`].
pub fn parse_status(text: &str) -> Result<i32, ProtocolError> {
    text.strip_suffix('\n')
        .and_then(|line| line.strip_prefix("exit "))
        .filter(|code| !code.contains('\n'))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ProtocolError::BadStatus(text.to_owned()))
}

/// `value` if it can be a word's value as written: an absolute path the kernel's quoting can
/// carry (it has no escape for `"`; control characters would end the line).
fn checked<'a>(what: &'static str, value: &'a str) -> Result<&'a str, ProtocolError> {
    if value.starts_with('/') && !value.chars().any(|c| c == '"' || c.is_control()) {
        Ok(value)
    } else {
        Err(ProtocolError::Unwritable {
            what,
            value: value.to_owned(),
        })
    }
}

/// `name=value`, with the value in double quotes when it has whitespace (the kernel's only
/// quoting; it drops the quotes from the value it hands on). `value` has no `"`.
pub fn word(name: &str, value: &str) -> String {
    if value.chars().any(char::is_whitespace) {
        format!("{name}=\"{value}\"")
    } else {
        format!("{name}={value}")
    }
}

fn set_once(
    slot: &mut Option<String>,
    name: &'static str,
    value: &str,
) -> Result<(), ProtocolError> {
    if slot.is_some() {
        return Err(ProtocolError::Twice(name));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// The words of a command line as the kernel splits it (`next_arg` in `lib/cmdline.c`):
/// whitespace separates words except inside double quotes.
fn kernel_words(cmdline: &str) -> impl Iterator<Item = &str> {
    let mut rest = cmdline;
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let mut in_quote = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quote = !in_quote;
                }
                c.is_whitespace() && !in_quote
            })
            .map_or(rest.len(), |(i, _)| i);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// A word's name and value, without the quotes the kernel drops: a leading quote of the word,
/// and the quotes around the value.
fn parameter(word: &str) -> Option<(&str, &str)> {
    let quoted = word.starts_with('"');
    let word = word.strip_prefix('"').unwrap_or(word);
    let (name, value) = word.split_once('=')?;
    let value = match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None if quoted => value.strip_suffix('"').unwrap_or(value),
        None => value,
    };
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(script: &str, shares: &[(&str, &str)]) -> Config {
        Config {
            script: script.to_owned(),
            cwd: "/work/main".to_owned(),
            shares: shares
                .iter()
                .map(|(tag, path)| Share {
                    tag: (*tag).to_owned(),
                    path: (*path).to_owned(),
                })
                .collect(),
            keep: vec!["/root/.cache/luo/kernel/build-1".to_owned()],
            systemd: false,
        }
    }

    #[test]
    fn the_systemd_mode_reads_back_with_systemd_own_words() {
        let mut wanted = config("/s", &[]);
        wanted.systemd = true;
        let words = wanted.words().unwrap();
        assert!(words.iter().any(|w| w == "luo_init.systemd=1"));
        assert!(words.iter().any(|w| w == "systemd.unit=luo-guest.target"));
        assert!(SYSTEMD_WORDS[0].ends_with(SYSTEMD_TARGET));
        let cmdline = format!("console=ttyS0 {} luo_plain_kexec", words.join(" "));
        assert_eq!(Config::from_cmdline(&cmdline).unwrap(), wanted);
        assert!(
            !Config::from_cmdline("luo_init.script=/s luo_init.cwd=/")
                .unwrap()
                .systemd
        );
    }

    #[test]
    fn words_read_back_among_other_words() {
        let wanted = config(
            "/root/.cache/luo/vm/script-1-0.sh",
            &[("rw0", "/root/.cache/luo/liveupdate"), ("rw1", "/a:b")],
        );
        let words = wanted.words().unwrap();
        assert_eq!(
            words[0],
            "luo_init.script=/root/.cache/luo/vm/script-1-0.sh"
        );
        assert_eq!(words[3], "luo_init.rw=rw1:/a:b");
        assert_eq!(words[4], "luo_init.keep=/root/.cache/luo/kernel/build-1");
        // As the kernel shows it after a kexec that appended a word of its own.
        let cmdline = format!(
            "console=ttyS0 root=/dev/root rootflags={NINEP_OPTIONS} ro {} luo_plain_kexec\n",
            words.join(" ")
        );
        assert_eq!(Config::from_cmdline(&cmdline).unwrap(), wanted);
    }

    #[test]
    fn paths_with_spaces_are_quoted_and_read_back() {
        let mut wanted = config("/home/a user/script.sh", &[("rw0", "/tmp/x y")]);
        wanted.keep.push("/tmp/a b".to_owned());
        let words = wanted.words().unwrap();
        assert_eq!(words[0], "luo_init.script=\"/home/a user/script.sh\"");
        let cmdline = format!("quiet {} loglevel=7", words.join(" "));
        assert_eq!(Config::from_cmdline(&cmdline).unwrap(), wanted);
    }

    #[test]
    fn a_quoted_word_loses_its_quotes() {
        let parsed =
            Config::from_cmdline("\"luo_init.script=/a b\" luo_init.cwd=/ x=\"y z\"").unwrap();
        assert_eq!(parsed.script, "/a b");
        assert_eq!(parsed.cwd, "/");
    }

    #[test]
    fn words_after_the_end_of_parameters_are_init_arguments() {
        let err = Config::from_cmdline("luo_init.cwd=/ -- luo_init.script=/s").unwrap_err();
        assert_eq!(err, ProtocolError::Missing(SCRIPT_WORD));
    }

    #[test]
    fn malformed_command_lines_are_refused() {
        assert_eq!(
            Config::from_cmdline("luo_init.script=/s").unwrap_err(),
            ProtocolError::Missing(CWD_WORD)
        );
        assert_eq!(
            Config::from_cmdline("luo_init.script=/s luo_init.cwd=/ luo_init.script=/t")
                .unwrap_err(),
            ProtocolError::Twice(SCRIPT_WORD)
        );
        for bad in [
            "luo_init.rw=rw0",
            "luo_init.rw=:/x",
            "luo_init.rw=rw0:relative",
        ] {
            let cmdline = format!("luo_init.script=/s luo_init.cwd=/ {bad}");
            assert_eq!(
                Config::from_cmdline(&cmdline).unwrap_err(),
                ProtocolError::BadShare(bad.to_owned())
            );
        }
    }

    #[test]
    fn unwritable_paths_are_refused() {
        for script in ["relative.sh", "/a\"b", "/a\nb", ""] {
            assert!(matches!(
                config(script, &[]).words(),
                Err(ProtocolError::Unwritable { what: "script", .. })
            ));
        }
        let mut relative = config("/s", &[]);
        relative.keep = vec!["target".to_owned()];
        assert!(matches!(
            relative.words(),
            Err(ProtocolError::Unwritable {
                what: "kept directory",
                ..
            })
        ));
        assert!(matches!(
            config("/s", &[("a:b", "/x")]).words(),
            Err(ProtocolError::Unwritable {
                what: "share tag",
                ..
            })
        ));
    }

    #[test]
    fn status_is_one_exact_line() {
        assert_eq!(parse_status(&status_line(0)), Ok(0));
        assert_eq!(parse_status(&status_line(137)), Ok(137));
        for bad in [
            "",
            "exit 0",
            "exit 0\nexit 1\n",
            "exit x\n",
            "0\n",
            "exit 0 \n",
        ] {
            assert_eq!(
                parse_status(bad),
                Err(ProtocolError::BadStatus(bad.to_owned()))
            );
        }
    }
}
