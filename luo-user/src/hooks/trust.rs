//! Whether a file the agent runs can be trusted, checked the way sshd's `StrictModes` checks
//! `authorized_keys` and sudo checks sudoers: the file and every directory above it must be
//! owned by root or by the agent's own user, and writable by their owner alone.
//!
//! Paths are resolved one component at a time from `/`, each opened relative to the directory
//! checked before it with `O_NOFOLLOW`, and each check is made on the opened descriptor
//! (`fstat`), so what is checked is what is used: a rename or a symlink swapped in between
//! cannot redirect the walk. A symlink on the way must be owned by root or the agent's user;
//! its target is walked the same way.
//!
//! One difference from sshd: a directory *above* the checked one may be world-writable if it
//! is root's and sticky (`/tmp`). The sticky bit lets only an entry's owner rename or remove
//! it, so a root-owned tree under `/tmp` cannot be swapped by anyone else (systemd's
//! `chase(CHASE_SAFE)` reasons the same way). The hooks directory, its `STATE.d`
//! directories and the hooks themselves get no such exception.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// How many symlinks one walk may follow, as the kernel's own limit (`MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// A file or directory the agent refuses to use, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path} {problem}: {fix}", fix = self.fix())]
#[non_exhaustive]
pub struct Untrusted {
    /// The path refused.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// Why a path is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Its group or others may write it (the mode is given).
    Writable {
        /// The permission bits.
        mode: u32,
    },
    /// It belongs to a user other than root and the agent's own.
    Owner {
        /// The owner's uid.
        uid: u32,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Writable { mode } => {
                write!(f, "is writable by group or others (mode {mode:04o})")
            }
            Problem::Owner { uid } => {
                write!(
                    f,
                    "is owned by uid {uid}, neither root nor the agent's user"
                )
            }
        }
    }
}

impl Untrusted {
    /// The command that makes the path trusted: `chmod go-w PATH` or `chown root PATH`.
    pub fn fix(&self) -> String {
        let path = shell_word(self.path.as_os_str());
        match self.problem {
            Problem::Writable { .. } => format!("chmod go-w {path}"),
            Problem::Owner { .. } => format!("chown root {path}"),
        }
    }
}

/// Why a path could not be opened as a trusted one.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A component is not trusted.
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    /// A component could not be opened or examined.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The component's path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl OpenError {
    fn io(path: &Path, errno: Errno) -> Self {
        OpenError::Io {
            path: path.to_owned(),
            source: errno.into(),
        }
    }

    /// Whether the walk failed because a component does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OpenError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// What a walk ends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A directory, opened for reading its entries.
    Directory,
    /// A file, opened for reading (and so for `execveat`: a script's interpreter reopens it).
    File,
}

/// Checks `stat`, found at `path`, as the thing used (strict) or as a directory above it.
pub(crate) fn check(stat: &Stat, path: &Path, above: bool) -> Result<(), Untrusted> {
    let uid = stat.st_uid;
    check_owner(uid, path)?;
    let mode = Mode::from_raw_mode(stat.st_mode);
    let writable = mode.intersects(Mode::WGRP | Mode::WOTH);
    let sticky_root_dir = above
        && uid == 0
        && mode.contains(Mode::SVTX)
        && FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
    if writable && !sticky_root_dir {
        return Err(Untrusted {
            path: path.to_owned(),
            problem: Problem::Writable {
                mode: stat.st_mode & 0o7777,
            },
        });
    }
    Ok(())
}

/// Checks that `uid`, the owner of `path`, is root or the agent's user.
fn check_owner(uid: u32, path: &Path) -> Result<(), Untrusted> {
    if uid != 0 && uid != rustix::process::geteuid().as_raw() {
        return Err(Untrusted {
            path: path.to_owned(),
            problem: Problem::Owner { uid },
        });
    }
    Ok(())
}

/// Opens the absolute `path` as `target`, checking every directory from `/` down, every
/// symlink followed, and what it ends on. Returns the descriptor and the path it resolved to
/// (no symlink, `.` or `..` left in it).
pub(crate) fn open(path: &Path, target: Target) -> Result<(OwnedFd, PathBuf), OpenError> {
    let root = Path::new("/");
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(CWD, root, dir_flags, Mode::empty())
        .map_err(|errno| OpenError::io(root, errno))?;
    check(&fstat(&fd, root)?, root, true)?;
    // The directories opened so far, `/` first: `..` goes back one.
    let mut dirs: Vec<(OwnedFd, PathBuf)> = vec![(fd, root.to_owned())];
    let mut todo = components(path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let (dir, dir_path) = dirs.last().expect("`/` is never popped");
        let here = dir_path.join(&name);
        let stat = rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| OpenError::io(&here, errno))?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(OpenError::io(&here, Errno::LOOP));
            }
            // Its mode means nothing, but in a sticky directory its owner chooses the target.
            check_owner(stat.st_uid, &here)?;
            let link = rustix::fs::readlinkat(dir, name.as_os_str(), Vec::new())
                .map_err(|errno| OpenError::io(&here, errno))?;
            let link = PathBuf::from(OsStr::from_bytes(link.as_bytes()));
            if link.is_absolute() {
                dirs.truncate(1);
            }
            todo.extend(components(&link));
            continue;
        }
        let last = todo.is_empty();
        let flags = match (last, target) {
            (false, _) => dir_flags,
            (true, Target::Directory) => {
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            }
            // Non-blocking, so a FIFO swapped in cannot hang the agent.
            (true, Target::File) => {
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
            }
        };
        let fd = rustix::fs::openat(dir, name.as_os_str(), flags, Mode::empty())
            .map_err(|errno| OpenError::io(&here, errno))?;
        check(&fstat(&fd, &here)?, &here, !last)?;
        if last {
            return Ok((fd, here));
        }
        dirs.push((fd, here));
    }
    // The path was `/` itself, or ended in `..`.
    let (fd, path) = dirs.pop().expect("`/` is never popped");
    match target {
        Target::Directory => {
            let fd =
                rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                    .map_err(|errno| OpenError::io(&path, errno))?;
            check(&fstat(&fd, &path)?, &path, false)?;
            Ok((fd, path))
        }
        Target::File => Err(OpenError::io(&path, Errno::ISDIR)),
    }
}

pub(crate) fn fstat(fd: &OwnedFd, path: &Path) -> Result<Stat, OpenError> {
    rustix::fs::fstat(fd).map_err(|errno| OpenError::io(path, errno))
}

/// The names of `path`, last first (a stack to pop); `.` and the root are dropped.
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// `word` as one shell word: as is when it is plain, else in single quotes.
fn shell_word(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use tempfile::TempDir;

    use super::*;

    fn mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_tree_writable_by_its_owner_alone_is_trusted() {
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        mode(&dir.path().join("f"), 0o755);
        let (_, resolved) = open(&dir.path().join("f"), Target::File).unwrap();
        assert_eq!(resolved, dir.path().join("f"));
    }

    #[test]
    fn a_group_writable_directory_above_is_refused_with_its_fix() {
        let dir = TempDir::new().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        mode(&sub, 0o775);
        fs::create_dir(sub.join("hooks")).unwrap();
        let err = open(&sub.join("hooks"), Target::Directory).unwrap_err();
        let OpenError::Untrusted(untrusted) = err else {
            panic!("{err}");
        };
        assert_eq!(untrusted.path, sub);
        assert_eq!(untrusted.fix(), format!("chmod go-w {}", sub.display()));
    }

    #[test]
    fn a_world_writable_sticky_directory_is_trusted_only_above() {
        let dir = TempDir::new().unwrap();
        let sticky = dir.path().join("sticky");
        fs::create_dir(&sticky).unwrap();
        mode(&sticky, 0o1777);
        fs::create_dir(sticky.join("hooks")).unwrap();
        assert!(open(&sticky.join("hooks"), Target::Directory).is_ok());
        assert!(matches!(
            open(&sticky, Target::Directory),
            Err(OpenError::Untrusted(_))
        ));
    }

    #[test]
    fn a_symlink_is_followed_and_its_target_checked() {
        let dir = TempDir::new().unwrap();
        let open_dir = dir.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        mode(&open_dir, 0o777);
        fs::write(open_dir.join("f"), "").unwrap();
        symlink("open/../open/f", dir.path().join("link")).unwrap();
        let err = open(&dir.path().join("link"), Target::File).unwrap_err();
        assert!(
            matches!(&err, OpenError::Untrusted(u) if u.path == open_dir),
            "{err}"
        );
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused_with_chown() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = TempDir::new().unwrap();
        let file = dir.path().join("it's");
        fs::write(&file, "").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let err = open(&file, Target::File).unwrap_err();
        let OpenError::Untrusted(untrusted) = err else {
            panic!("{err}");
        };
        assert_eq!(untrusted.problem, Problem::Owner { uid: 65534 });
        assert_eq!(
            untrusted.fix(),
            format!("chown root '{}/it'\\''s'", dir.path().display())
        );
    }
}
