//! `luoctl man`: the manual pages, rendered from the command line model, with the sections
//! clap_mangen does not write: EXIT STATUS (from [`exit::DOCUMENTED`]), ENVIRONMENT (from the
//! options' variables) and SEE ALSO.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Command;
use clap_mangen::Man;

use crate::exit;

/// Variables no option stands for, and the subcommand that reads them (`None`: any).
const OTHER_VARIABLES: [(&str, Option<&str>, &str); 2] = [
    (
        "NOTIFY_SOCKET",
        Some("agent"),
        "set by systemd for a Type=notify service: the agent sends READY=1 and STATUS= there",
    ),
    (
        "NO_COLOR",
        Some("agent"),
        "when set, the agent's log has no colours even on a terminal",
    ),
];

/// Writes the page of `command` to stdout.
pub fn print(command: Command) -> io::Result<()> {
    let mut command = command;
    command.build();
    let mut out = io::stdout().lock();
    render(&command, None, &mut out)?;
    out.flush()
}

/// Writes `luoctl.1` and one `luoctl-SUBCOMMAND.1` per subcommand into `dir`; returns the
/// paths written.
pub fn write_all(command: Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut command = command;
    // Subcommands' pages need their own name and version, which `build` propagates.
    command.build();
    let mut written = Vec::new();
    let name = command.get_name().to_owned();
    written.push(write(&command, None, &dir.join(format!("{name}.1")))?);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name}-{}", sub.get_name());
        let page = sub.clone().name(full.clone()).display_name(full.clone());
        written.push(write(
            &page,
            Some(sub.get_name()),
            &dir.join(format!("{full}.1")),
        )?);
    }
    Ok(written)
}

fn write(command: &Command, sub: Option<&str>, path: &Path) -> io::Result<PathBuf> {
    let mut out = BufWriter::new(File::create(path)?);
    render(command, sub, &mut out)?;
    out.flush()?;
    Ok(path.to_path_buf())
}

/// The page of `command`, the subcommand `sub` or (`None`) the whole command.
fn render(command: &Command, sub: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    write_exit_status(out)?;
    write_environment(command, sub, out)?;
    write_see_also(command, sub, out)?;
    if command.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

fn write_exit_status(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in exit::DOCUMENTED {
        writeln!(out, ".TP\n.B {code}\n{}", escape(meaning))?;
    }
    Ok(())
}

fn write_environment(command: &Command, sub: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    // The whole command's page lists every subcommand's variables.
    let commands: Vec<&Command> = match sub {
        Some(_) => vec![command],
        None => std::iter::once(command)
            .chain(command.get_subcommands())
            .collect(),
    };
    let mut variables: Vec<(String, String)> = Vec::new();
    for arg in commands
        .iter()
        .flat_map(|c| c.get_arguments())
        .filter(|arg| !arg.is_hide_set())
    {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let name = env.to_string_lossy().into_owned();
        if variables.iter().all(|(known, _)| *known != name) {
            variables.push((name, format!("stands for --{long}")));
        }
    }
    for (name, only, meaning) in OTHER_VARIABLES {
        if sub.is_none() || sub == only {
            variables.push((name.to_owned(), meaning.to_owned()));
        }
    }
    if variables.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH ENVIRONMENT")?;
    for (name, meaning) in variables {
        writeln!(out, ".TP\n.B {name}\n{}", escape(&meaning))?;
    }
    Ok(())
}

fn write_see_also(command: &Command, sub: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let mut pages: Vec<String> = match sub {
        Some(_) => vec!["luoctl(1)".to_owned()],
        None => command
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| format!("luoctl-{}(1)", s.get_name()))
            .collect(),
    };
    let related: &[&str] = match sub {
        Some("agent") => &["run-parts(8)", "systemd.service(5)", "sd_notify(3)"],
        Some("kexec" | "cancel") => &["kexec(8)", "kexec_file_load(2)", "systemctl(1)"],
        Some("watch" | "wait") => &["inotifywait(1)", "timeout(1)"],
        Some(_) => &[],
        None => &["kexec(8)", "run-parts(8)", "systemctl(1)"],
    };
    pages.extend(related.iter().map(|page| (*page).to_owned()));
    writeln!(out, ".SH \"SEE ALSO\"")?;
    let list: Vec<String> = pages
        .iter()
        .map(|page| match page.split_once('(') {
            Some((name, section)) => format!(".BR {name} ({section}"),
            None => format!(".B {page}"),
        })
        .collect();
    // One reference a line, each but the last followed by a comma.
    for (at, line) in list.iter().enumerate() {
        let comma = if at + 1 < list.len() { " ," } else { "" };
        writeln!(out, "{line}{comma}")?;
    }
    writeln!(
        out,
        "{}",
        escape("The user guide: Documentation/user-guide.md in luo's sources.")
    )
}

/// `text` as a roff text line: backslashes and dashes escaped, and a leading `.` or `'`
/// (which would make it a request) neutralised.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn page(sub: Option<&str>) -> String {
        let mut command = Cli::command();
        command.build();
        let page = match sub {
            Some(name) => command
                .find_subcommand(name)
                .unwrap()
                .clone()
                .name(format!("luoctl-{name}")),
            None => command,
        };
        let mut out = Vec::new();
        render(&page, sub, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_page_has_exit_status_environment_and_see_also() {
        for sub in [None, Some("agent"), Some("state"), Some("kexec")] {
            let text = page(sub);
            for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH \"SEE ALSO\""] {
                assert!(text.contains(section), "{sub:?} lacks {section}");
            }
        }
    }

    #[test]
    fn the_exit_statuses_are_the_documented_ones() {
        let text = page(Some("agent"));
        for (code, _) in exit::DOCUMENTED {
            assert!(text.contains(&format!(".B {code}\n")), "no {code}");
        }
    }

    #[test]
    fn a_subcommands_environment_lists_only_its_own_variables() {
        let text = page(Some("state"));
        assert!(text.contains("LUO_STATE_FILE"));
        assert!(!text.contains("LUO_DEVICE"), "{text}");
        assert!(!text.contains("NOTIFY_SOCKET"), "{text}");
        assert!(page(Some("agent")).contains("NOTIFY_SOCKET"));
    }

    #[test]
    fn escape_keeps_text_from_being_read_as_requests() {
        assert_eq!(escape(".x a-b \\n"), "\\&.x a\\-b \\en");
    }
}
