//! A hooks directory: one subdirectory per state, listed the way `run-parts` lists one.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use luo_state::State;

/// One executable of a state's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Its path.
    pub path: PathBuf,
    /// How it is named in logs: `STATE.d/NAME`.
    pub name: String,
}

/// A hooks directory: `prepared.d/`, `frozen.d/`, `updated.d/`, `normal.d/` under one root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksDir {
    root: PathBuf,
}

/// What is in one state's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// The hooks to run, in order.
    pub hooks: Vec<Hook>,
    /// Entries with a valid name that are not run because they are not executable regular
    /// files, with the reason: worth a warning, since someone probably meant them to run.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

impl HooksDir {
    /// The hooks directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HooksDir { root: root.into() }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `state`'s hooks: `ROOT/STATE.d`.
    pub fn dir(&self, state: State) -> PathBuf {
        self.root.join(format!("{}.d", state.word()))
    }

    /// Lists `state`'s hooks in run order. A missing directory has no hooks; one that cannot
    /// be read is an error.
    pub fn list(&self, state: State) -> io::Result<Listing> {
        let dir = self.dir(state);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(err) => return Err(err),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(name) = name.to_str().filter(|n| is_hook_name(n)) {
                names.push(name.to_owned());
            }
        }
        // run-parts order: the bytes of the names, whatever the locale.
        names.sort_unstable();
        let mut listing = Listing::default();
        for name in names {
            let path = dir.join(&name);
            match std::fs::metadata(&path) {
                Ok(meta) if !meta.is_file() => listing.skipped.push((path, "not a regular file")),
                Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                    listing.skipped.push((path, "not executable"))
                }
                Ok(_) => listing.hooks.push(Hook {
                    path,
                    name: format!("{}.d/{name}", state.word()),
                }),
                Err(_) => listing.skipped.push((path, "a dangling symlink")),
            }
        }
        Ok(listing)
    }
}

/// run-parts' default name rule: ASCII letters, digits, underscores and hyphens only.
fn is_hook_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use std::fs;

    use tempfile::TempDir;

    use super::*;

    fn executable(path: &Path, script: &str) {
        fs::write(path, script).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn hooks_run_in_the_byte_order_of_their_names() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("prepared.d");
        fs::create_dir(&dir).unwrap();
        for name in ["20-b", "10-a", "B", "a", "9"] {
            executable(&dir.join(name), "#!/bin/sh\n");
        }
        let listing = HooksDir::new(root.path()).list(State::Prepared).unwrap();
        let names: Vec<&str> = listing.hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
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
        let listing = HooksDir::new(root.path()).list(State::Updated).unwrap();
        assert_eq!(listing.hooks.len(), 1);
        assert_eq!(listing.hooks[0].name, "updated.d/ok");
        assert!(listing.skipped.is_empty());
    }

    #[test]
    fn a_non_executable_file_is_skipped_with_the_reason() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("normal.d");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("10-plain"), "#!/bin/sh\n").unwrap();
        fs::create_dir(dir.join("20-dir")).unwrap();
        let listing = HooksDir::new(root.path()).list(State::Normal).unwrap();
        assert!(listing.hooks.is_empty());
        let reasons: Vec<&str> = listing.skipped.iter().map(|(_, r)| *r).collect();
        assert_eq!(reasons, ["not executable", "not a regular file"]);
    }

    #[test]
    fn a_missing_state_directory_has_no_hooks() {
        let root = TempDir::new().unwrap();
        let listing = HooksDir::new(root.path()).list(State::Frozen).unwrap();
        assert_eq!(listing, Listing::default());
    }
}
