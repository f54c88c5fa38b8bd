//! `cargo xtask test-patches`, the series' own part: regenerated, applied, carrying the
//! repository's files, clean for `checkpatch.pl --strict`, and built in.

use std::path::Path;
use std::process::Command;

use crate::build::cache;
use crate::build::kernel::Kernel;
use crate::build::setup;
use crate::run::{self, Result};
use crate::series::generate::{self, ABSTRACTION_PATH, ABSTRACTION_SOURCE, TREE_DIR};
use crate::series::{read, tree};

/// The series regenerated and applied to the pristine tree, carrying the repository's files,
/// clean for `checkpatch.pl --strict`, and built in (`CLIPPY=1`, warnings in its files
/// refused); returns the built kernel, for the guest tests against the built-in.
pub fn run() -> Result<Kernel> {
    setup::run()?;
    let series = generate::generate(&generate::default_out())?;
    let _tree_lock = tree::lock_tree()?;
    let patched = tree::apply(&series)?;
    check_sources(&patched)?;
    let summaries = checkpatch(&patched, &series)?;
    report(&patched, &summaries)?;
    tree::build(&series, &patched)
}

/// `scripts/checkpatch.pl --strict` on every patch; returns the summaries, fails unless each has
/// no error, warning or check.
pub fn checkpatch(tree: &Path, series: &generate::Series) -> Result<Vec<String>> {
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for patch in &series.patches {
        let out = Command::new("perl")
            .arg(tree.join("scripts/checkpatch.pl"))
            .args(["--strict", "--no-color"])
            .arg(format!("--root={}", tree.display()))
            .arg(patch)
            .current_dir(tree)
            .output()
            .map_err(|err| format!("cannot run checkpatch.pl: {err}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let name = patch.file_name().unwrap_or_default().to_string_lossy();
        let summary = text
            .lines()
            .find(|line| line.starts_with("total:"))
            .unwrap_or("no summary")
            .to_owned();
        if !out.status.success() || !summary.starts_with("total: 0 errors, 0 warnings, 0 checks") {
            failures.push(format!("{name}: {summary}\n{text}"));
        }
        summaries.push(format!("{name}: {summary}"));
    }
    if failures.is_empty() {
        Ok(summaries)
    } else {
        Err(format!("checkpatch.pl --strict:\n{}", failures.join("\n")))
    }
}

/// Checks that the applied tree carries the repository's files: the abstraction byte for byte
/// once its out-of-tree declarations are gone, its C helpers byte for byte, and each shared
/// file below its header.
pub fn check_sources(tree: &Path) -> Result {
    let workspace = cache::workspace();
    let abstraction = generate::in_tree_abstraction(&read(&workspace.join(ABSTRACTION_SOURCE))?)?;
    if read(&tree.join(ABSTRACTION_PATH))? != abstraction {
        return Err(format!(
            "{ABSTRACTION_PATH} differs from {ABSTRACTION_SOURCE} without its out-of-tree lines"
        ));
    }
    if read(&tree.join(generate::HELPERS_PATH))? != read(&workspace.join(generate::HELPERS_SOURCE))?
    {
        return Err(format!(
            "{} differs from {}",
            generate::HELPERS_PATH,
            generate::HELPERS_SOURCE
        ));
    }
    let (_, shared) = generate::in_tree_root(&read(&workspace.join("luo-kmod/src/luo.rs"))?)?;
    for file in shared {
        let in_tree = read(&tree.join(TREE_DIR).join(format!("{}.rs", file.module)))?;
        let source = read(&workspace.join(&file.source))?;
        if in_tree != generate::shared_header(&file.source, &source) {
            return Err(format!(
                "{TREE_DIR}/{}.rs is not {} (did rustfmt change it?)",
                file.module, file.source
            ));
        }
    }
    Ok(())
}

/// What [`run()`] prints of the series: its diffstat and checkpatch's summaries.
pub fn report(tree: &Path, summaries: &[String]) -> Result {
    let stat = run::output(Command::new("git").arg("-C").arg(tree).args([
        "diff",
        "--stat=72",
        "pristine",
        "HEAD",
    ]))?;
    eprintln!("    diffstat against Linux 7.3:");
    for line in stat.lines() {
        eprintln!("      {}", line.trim_start());
    }
    for summary in summaries {
        eprintln!("    checkpatch --strict {summary}");
    }
    Ok(())
}
