//! git as the series runs it: one repository, one author, no configuration of the user's or
//! the system's, so the series depends only on its inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::Result;

/// The identity of the patches when git has none configured.
const PLACEHOLDER_NAME: &str = "luo developers";
const PLACEHOLDER_EMAIL: &str = "luo@localhost";

/// The author of the series: `LUO_PATCH_AUTHOR` (`Name <email>`, for whoever sends it), or a
/// placeholder that says it is one. Not git's configured user: the series would then change with
/// the machine it is generated on.
pub fn identity() -> Result<(String, String)> {
    let Ok(author) = std::env::var("LUO_PATCH_AUTHOR") else {
        return Ok((PLACEHOLDER_NAME.to_owned(), PLACEHOLDER_EMAIL.to_owned()));
    };
    author
        .trim()
        .strip_suffix('>')
        .and_then(|rest| rest.split_once(" <"))
        .filter(|(name, email)| !name.is_empty() && email.contains('@'))
        .map(|(name, email)| (name.trim().to_owned(), email.to_owned()))
        .ok_or_else(|| format!("LUO_PATCH_AUTHOR={author:?} is not of the form 'Name <email>'"))
}

/// git in one repository, as one author, without the user's or the system's configuration, so
/// the series depends only on its inputs.
pub struct Git {
    dir: PathBuf,
    name: String,
    email: String,
}

impl Git {
    pub fn new(dir: &Path, (name, email): (String, String)) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
            email,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        // A fixed date: the same inputs give the same series, byte for byte.
        let date = "2026-01-01T00:00:00+00:00";
        let mut git = Command::new("git");
        git.arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", &self.name)
            .env("GIT_AUTHOR_EMAIL", &self.email)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_NAME", &self.name)
            .env("GIT_COMMITTER_EMAIL", &self.email)
            .env("GIT_COMMITTER_DATE", date);
        git
    }

    pub fn run(&self, args: &[&str]) -> Result {
        let out = self
            .command(args)
            .output()
            .map_err(|err| format!("cannot run git: {err}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`git {}` in {} failed ({}): {}",
                args.join(" "),
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn commit(&self, message: &str) -> Result {
        self.run(&["commit", "-q", "--allow-empty-message", "-m", message])
    }

    /// `message` with this author's `Signed-off-by`.
    pub fn signed(&self, message: &str) -> String {
        format!(
            "{}\n\nSigned-off-by: {} <{}>\n",
            message.trim_end(),
            self.name,
            self.email
        )
    }
}
