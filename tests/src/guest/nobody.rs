//! Programs run as `nobody`, wherever the checkout lies.
//!
//! The test binaries sit in the checkout, which may lie below a directory only its owner may
//! enter (root's home is 0700). `nobody` could then not start them at all, and a check of what
//! an unprivileged user may do would fail on the harness instead. So a program that `nobody`
//! runs is copied first, into a directory of the guest's own scratch `/tmp` (the init's tmpfs,
//! which only this guest sees) that everyone may enter.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The uid and gid of `nobody`, for the checks an unprivileged user must fail.
pub const NOBODY: u32 = 65534;

/// A copy of a program that `nobody` can run; removed when dropped.
pub struct Program {
    dir: PathBuf,
    path: PathBuf,
}

impl Program {
    /// Copies `program` into a fresh directory of the guest's `/tmp`, both open to everyone.
    pub fn copy(program: &Path) -> Result<Self, String> {
        let name = program
            .file_name()
            .ok_or_else(|| format!("{} names no file", program.display()))?;
        let dir = std::env::temp_dir().join(format!("luo-nobody-{}", std::process::id()));
        DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        // From here on, dropping `copy` removes the directory, whatever fails next.
        let copy = Self {
            path: dir.join(name),
            dir,
        };
        std::fs::copy(program, &copy.path).map_err(|err| {
            format!(
                "cannot copy {} to {}: {err}",
                program.display(),
                copy.path.display()
            )
        })?;
        // The copy keeps the original's mode, which a checkout made under `umask 077` leaves
        // closed to others.
        std::fs::set_permissions(&copy.path, Permissions::from_mode(0o755))
            .map_err(|err| format!("cannot open {} to nobody: {err}", copy.path.display()))?;
        Ok(copy)
    }

    /// A command that runs the copy as `nobody`, in `/` (the checkout may be out of its reach).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command.uid(NOBODY).gid(NOBODY).current_dir("/");
        command
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // The guest and its `/tmp` go at power-off anyway; this only keeps a test tidy.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
