//! A hooks directory: one subdirectory per state, listed the way `run-parts` lists one, and
//! trusted the way sshd trusts `authorized_keys` (see [`trust`](super::trust)).
//!
//! The root is opened once, when the agent starts, and each listing walks it by descriptor:
//! `STATE.d` is opened relative to the root's descriptor and each hook relative to its
//! directory's, and every one is checked on its own descriptor. A hook is run from the
//! descriptor that was checked, never from its path again.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use luo_state::State;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::trust::{self, OpenError, Target};

/// One executable of a state's directory, opened and checked.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Hook {
    /// Its path in the hooks directory.
    pub path: PathBuf,
    /// How it is named in logs: `STATE.d/NAME`.
    pub name: String,
    /// The file that runs: `path` itself, or where its symlinks lead.
    pub target: PathBuf,
    /// The file, opened for reading: it is executed from this descriptor.
    pub(crate) file: Arc<OwnedFd>,
}

/// A hooks directory: `prepared.d/`, `frozen.d/`, `updated.d/`, `normal.d/` under one root,
/// opened once.
#[derive(Clone, Debug)]
pub struct HooksDir {
    root: PathBuf,
    resolved: PathBuf,
    fd: Arc<OwnedFd>,
}

/// What is in one state's directory.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Listing {
    /// The hooks to run, in order.
    pub hooks: Vec<Hook>,
    /// Entries with a valid name that are not run because they are not executable regular
    /// files, with the reason: worth a warning, since someone probably meant them to run.
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// Entries refused because they, or a directory or symlink on their way, are not trusted
    /// or could not be opened. A caller runs none of the state's hooks then.
    pub refused: Vec<OpenError>,
}

impl HooksDir {
    /// Opens the hooks directory at `root` and checks it and every directory above it.
    ///
    /// A missing root is an error, as is one that cannot be read or is not trusted: an agent
    /// must not start with an empty set of hooks because of a typo or a bad `chmod`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, OpenError> {
        let root = root.into();
        let absolute = std::path::absolute(&root).map_err(|source| OpenError::Io {
            path: root.clone(),
            source,
        })?;
        let (fd, resolved) = trust::open(&absolute, Target::Directory)?;
        Ok(HooksDir {
            root,
            resolved,
            fd: Arc::new(fd),
        })
    }

    /// Its root, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `state`'s hooks: `ROOT/STATE.d`.
    pub fn dir(&self, state: State) -> PathBuf {
        self.root.join(state_dir(state))
    }

    /// Lists `state`'s hooks in run order, checking the root again, `STATE.d`, and each
    /// hook. A missing `STATE.d` has no hooks; one that cannot be read or is not trusted is
    /// an error.
    pub fn list(&self, state: State) -> Result<Listing, OpenError> {
        // The root's mode may have changed since it was opened.
        trust::check(&trust::fstat(&self.fd, &self.root)?, &self.root, false)?;
        let name = state_dir(state);
        let path = self.root.join(&name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = match rustix::fs::openat(&*self.fd, name.as_str(), flags, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::NOENT) => return Ok(Listing::default()),
            Err(errno) => return Err(io_error(&path, errno)),
        };
        trust::check(&trust::fstat(&dir, &path)?, &path, false)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(|errno| io_error(&path, errno))? {
            let entry = entry.map_err(|errno| io_error(&path, errno))?;
            let name = entry.file_name().to_bytes();
            if is_hook_name(name) {
                names.push(name.to_vec());
            }
        }
        // run-parts order: the bytes of the names, whatever the locale.
        names.sort_unstable();
        let mut listing = Listing::default();
        for name in names {
            let name = OsStr::from_bytes(&name);
            let hook_path = path.join(name);
            match self.open_hook(&dir, &self.resolved.join(state_dir(state)), name) {
                Ok(Opened::Hook { file, target }) => listing.hooks.push(Hook {
                    name: format!("{}.d/{}", state.word(), name.to_string_lossy()),
                    path: hook_path,
                    target,
                    file: Arc::new(file),
                }),
                Ok(Opened::Skipped(reason)) => listing.skipped.push((hook_path, reason)),
                Err(err) => listing.refused.push(err),
            }
        }
        Ok(listing)
    }

    /// Opens the entry `name` of the state directory `dir` (at `resolved`) and checks it.
    fn open_hook(&self, dir: &OwnedFd, resolved: &Path, name: &OsStr) -> Result<Opened, OpenError> {
        let here = resolved.join(name);
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| io_error(&here, errno))?;
        let (file, target) = match FileType::from_raw_mode(stat.st_mode) {
            // Walked again from `/`: the target and every directory above it are checked.
            FileType::Symlink => match trust::open(&here, Target::File) {
                Ok(opened) => opened,
                Err(err) if err.is_not_found() => {
                    return Ok(Opened::Skipped("a dangling symlink"));
                }
                Err(err) => return Err(err),
            },
            FileType::RegularFile => {
                // Non-blocking, so a FIFO swapped in cannot hang the agent.
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                let file = rustix::fs::openat(dir, name, flags, Mode::empty())
                    .map_err(|errno| io_error(&here, errno))?;
                (file, here)
            }
            _ => return Ok(Opened::Skipped("not a regular file")),
        };
        let stat = trust::fstat(&file, &target)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Ok(Opened::Skipped("not a regular file"));
        }
        if stat.st_mode & 0o111 == 0 {
            return Ok(Opened::Skipped("not executable"));
        }
        trust::check(&stat, &target, false)?;
        Ok(Opened::Hook { file, target })
    }
}

/// One entry, opened.
enum Opened {
    Hook { file: OwnedFd, target: PathBuf },
    Skipped(&'static str),
}

fn state_dir(state: State) -> String {
    format!("{}.d", state.word())
}

fn io_error(path: &Path, errno: Errno) -> OpenError {
    OpenError::Io {
        path: path.to_owned(),
        source: io::Error::from(errno),
    }
}

/// run-parts' default name rule: ASCII letters, digits, underscores and hyphens only.
fn is_hook_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use tempfile::TempDir;

    use super::*;

    fn executable(path: &Path, script: &str) {
        fs::write(path, script).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn names(listing: &Listing) -> Vec<&str> {
        listing.hooks.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn hooks_run_in_the_byte_order_of_their_names() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("prepared.d");
        fs::create_dir(&dir).unwrap();
        for name in ["20-b", "10-a", "B", "a", "9"] {
            executable(&dir.join(name), "#!/bin/sh\n");
        }
        let listing = HooksDir::open(root.path())
            .unwrap()
            .list(State::Prepared)
            .unwrap();
        assert_eq!(
            names(&listing),
            [
                "prepared.d/10-a",
                "prepared.d/20-b",
                "prepared.d/9",
                "prepared.d/B",
                "prepared.d/a"
            ]
        );
    }

    #[test]
    fn names_run_parts_would_skip_are_skipped_silently() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("updated.d");
        fs::create_dir(&dir).unwrap();
        for name in [".hidden", "save.bak", "save~", "x.dpkg-old", "ok"] {
            executable(&dir.join(name), "#!/bin/sh\n");
        }
        let listing = HooksDir::open(root.path())
            .unwrap()
            .list(State::Updated)
            .unwrap();
        assert_eq!(names(&listing), ["updated.d/ok"]);
        assert!(listing.skipped.is_empty());
    }

    #[test]
    fn a_non_executable_file_is_skipped_with_the_reason() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("normal.d");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("10-plain"), "#!/bin/sh\n").unwrap();
        fs::create_dir(dir.join("20-dir")).unwrap();
        symlink("nowhere", dir.join("30-dangling")).unwrap();
        let listing = HooksDir::open(root.path())
            .unwrap()
            .list(State::Normal)
            .unwrap();
        assert!(listing.hooks.is_empty());
        let reasons: Vec<&str> = listing.skipped.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            reasons,
            ["not executable", "not a regular file", "a dangling symlink"]
        );
    }

    #[test]
    fn a_missing_state_directory_has_no_hooks() {
        let root = TempDir::new().unwrap();
        let listing = HooksDir::open(root.path())
            .unwrap()
            .list(State::Frozen)
            .unwrap();
        assert!(listing.hooks.is_empty() && listing.skipped.is_empty());
    }

    #[test]
    fn a_missing_root_is_an_error_not_an_empty_set_of_hooks() {
        let root = TempDir::new().unwrap();
        let err = HooksDir::open(root.path().join("hooks")).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn a_group_writable_state_directory_is_refused() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("prepared.d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o775)).unwrap();
        let err = HooksDir::open(root.path())
            .unwrap()
            .list(State::Prepared)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{0} is writable by group or others (mode 0775): chmod go-w {0}",
                dir.display()
            )
        );
    }

    #[test]
    fn a_world_writable_hook_is_refused() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("prepared.d");
        fs::create_dir(&dir).unwrap();
        executable(&dir.join("10-ok"), "#!/bin/sh\n");
        executable(&dir.join("20-open"), "#!/bin/sh\n");
        fs::set_permissions(dir.join("20-open"), fs::Permissions::from_mode(0o757)).unwrap();
        let listing = HooksDir::open(root.path())
            .unwrap()
            .list(State::Prepared)
            .unwrap();
        assert_eq!(listing.refused.len(), 1);
        assert!(
            listing.refused[0]
                .to_string()
                .ends_with(&format!("chmod go-w {}", dir.join("20-open").display()))
        );
    }

    #[test]
    fn a_symlinked_hook_is_checked_where_it_leads() {
        let root = TempDir::new().unwrap();
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        executable(&elsewhere.join("save"), "#!/bin/sh\n");
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o777)).unwrap();
        let hooks = root.path().join("hooks");
        fs::create_dir_all(hooks.join("prepared.d")).unwrap();
        symlink(elsewhere.join("save"), hooks.join("prepared.d/10-save")).unwrap();
        let listing = HooksDir::open(&hooks)
            .unwrap()
            .list(State::Prepared)
            .unwrap();
        assert!(listing.hooks.is_empty());
        assert!(matches!(
            &listing.refused[..],
            [OpenError::Untrusted(u)] if u.path == elsewhere
        ));
    }
}
