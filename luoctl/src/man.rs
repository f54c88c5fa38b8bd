//! `luoctl man`: the manual pages, rendered from the command line model.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use clap::Command;

/// Writes the page of `command` to stdout.
pub fn print(command: Command) -> io::Result<()> {
    let mut out = io::stdout().lock();
    clap_mangen::Man::new(command).render(&mut out)?;
    out.flush()
}

/// Writes `luoctl.1` and one `luoctl-SUBCOMMAND.1` per subcommand into `dir`; returns the
/// paths written.
pub fn write_all(command: Command, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut command = command;
    // Subcommands' pages need their own name and version, which `build` propagates.
    command.build();
    let mut written = Vec::new();
    let name = command.get_name().to_owned();
    written.push(render(command.clone(), &dir.join(format!("{name}.1")))?);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name}-{}", sub.get_name());
        let page = sub.clone().name(full.clone()).display_name(full.clone());
        written.push(render(page, &dir.join(format!("{full}.1")))?);
    }
    Ok(written)
}

fn render(command: Command, path: &Path) -> io::Result<std::path::PathBuf> {
    let mut out = BufWriter::new(File::create(path)?);
    clap_mangen::Man::new(command).render(&mut out)?;
    out.flush()?;
    Ok(path.to_path_buf())
}
