//! `cargo xtask test [--list] [--quick | NAME...]`: every check the project has, in the order
//! that fails fastest, or only the ones named, or the quick loop ([`QUICK`]).
//!
//! Each test has a name (`cargo xtask test --list`): the host's checks by theirs, then
//! `kernel/TEST`, `liveupdate/ID`, `patches` (the in-tree series applied, checkpatch.pl and the
//! built-in kernel), `config-matrix` (the series' luo objects without debugfs, without KHO),
//! `builtin/TEST`, `mainline/TEST` (luo beside mainline's orchestrator) and
//! `systemd/TEST` (the live update under Debian's systemd as PID 1, on the in-tree kernel).
//! A failure says how to run that test alone.

mod publish;
mod scripts;
mod session_uapi;

use std::process::Command;
use std::time::Instant;

use crate::build::cache;
use crate::build::module;
use crate::run::{self, Result};
use crate::scenario::kernel_tests::{self, Suite};
use crate::scenario::{self, builtin, demo, liveupdate, mainline, systemd, timeline};
use crate::series;

/// The host's checks, in the order they run: they fail fastest, so they go first.
const HOST: &[&str] = &[
    "fmt",
    "scripts",
    "clippy",
    "unit",
    "doc",
    "package",
    "session-uapi",
    "loom",
];

/// `cargo xtask test --quick`: the loop a developer runs after an edit, about two minutes warm
/// on a 2-core host (1 min 44 s and 1 min 47 s measured on a quiet host, the rebuild after an
/// edit of luo-user included; other guests running beside it can double that). The host's fast
/// checks, clippy and the unit and loom tests, then a guest for each kernel and flavour:
/// `luoctl` against luo.ko on the module's kernel (its widest kernel test: the CLI, the agent,
/// a watcher), the standalone demo's cycle (luo.ko, the agent and its hooks, a counter
/// checkpointed across a kexec), the live update with luo built in (the in-tree kernel, two
/// boots), and the default demo, the observer flavour beside mainline LUO (a 256 MiB memfd
/// kept by the agent across a kexec, about 40 s). Left out, for the full run: rustdoc,
/// packaging and the session header check, the other kernel and live-update tests (a guest
/// each, 5 to 80 s), the series' checks, mainline's observer and refusal tests, and systemd's
/// guests.
const QUICK: &[&str] = &[
    "fmt",
    "scripts",
    "clippy",
    "unit",
    "loom",
    "kernel/luoctl",
    "liveupdate/cycle",
    "builtin/liveupdate",
    "mainline/demo",
];

/// The names `--quick` runs, as words for [`run()`].
pub fn quick() -> Vec<String> {
    QUICK.iter().map(|name| (*name).to_owned()).collect()
}

/// luo.ko's refusal beside mainline LUO, on the module's kernel.
const MAINLINE_REFUSAL: &str = "mainline/refusal";

/// The observer flavour beside mainline LUO, on the in-tree kernel.
const MAINLINE_OBSERVER: &str = "mainline/observer";

/// The demo's live update beside mainline LUO, with a memfd kept by `luoctl agent`.
const MAINLINE_DEMO: &str = "mainline/demo";

/// The in-tree series' own checks (see `series::check`), which build the built-in's kernel.
const PATCHES: &str = "patches";

/// The series' luo objects built without debugfs and without KHO (see `series::matrix`).
const CONFIG_MATRIX: &str = "config-matrix";

/// Every test's name, in the order `test` runs them.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = HOST.iter().map(|name| (*name).to_owned()).collect();
    names.extend(kernel_tests::TESTS.iter().map(|t| format!("kernel/{t}")));
    names.push(MAINLINE_REFUSAL.to_owned());
    names.extend(liveupdate::names().map(|id| format!("liveupdate/{id}")));
    names.push(PATCHES.to_owned());
    names.push(CONFIG_MATRIX.to_owned());
    names.extend(builtin::names().map(|t| format!("builtin/{t}")));
    names.push(MAINLINE_OBSERVER.to_owned());
    names.push(MAINLINE_DEMO.to_owned());
    names.extend(systemd::names().map(|t| format!("systemd/{t}")));
    names
}

/// `cargo xtask test --list [--quick]`: the name of every test that `only` selects (all when
/// it is empty), one a line.
pub fn list(only: &[String]) -> Result {
    for name in select(&names(), only)? {
        println!("{name}");
    }
    Ok(())
}

/// Runs the tests named in `only` (a name, or a group such as `kernel`), or all of them when
/// it is empty; the first group with a failure stops the run.
pub fn run(only: &[String]) -> Result {
    let start = Instant::now();
    let chosen = select(&names(), only)?;
    for check in HOST
        .iter()
        .filter(|check| chosen.iter().any(|c| c == *check))
    {
        alone(check, host(check))?;
    }
    let kernel = in_group(&chosen, "kernel");
    if !kernel.is_empty() {
        Suite::module()?.run_each(&kernel, |t| rerun(&format!("kernel/{t}")))?;
    }
    let chose = |name: &str| chosen.iter().any(|c| c == name);
    if chose(MAINLINE_REFUSAL) {
        alone(
            MAINLINE_REFUSAL,
            mainline::test_module_refusal(&module::ensure()?),
        )?;
    }
    let live = in_group(&chosen, "liveupdate");
    if !live.is_empty() {
        let tools = liveupdate::prepare_tools()?;
        liveupdate::run_each(&tools, &live, |id| rerun(&format!("liveupdate/{id}")))?;
    }
    let built_in = in_group(&chosen, "builtin");
    let patches = chose(PATCHES);
    let under_systemd = in_group(&chosen, "systemd");
    // The built-in's tests need its kernel, which the series' checks build; alone, they take it
    // from the cache without checking the series again.
    let kernel = if patches {
        Some(alone(PATCHES, series::check::run())?)
    } else if !built_in.is_empty()
        || chose(MAINLINE_OBSERVER)
        || chose(MAINLINE_DEMO)
        || !under_systemd.is_empty()
    {
        Some(series::tree::in_tree_kernel()?)
    } else {
        None
    };
    if chose(CONFIG_MATRIX) {
        alone(CONFIG_MATRIX, series::matrix::run())?;
    }
    if let Some(kernel) = kernel {
        builtin::run_each(&kernel, &built_in, |t| rerun(&format!("builtin/{t}")))?;
        if chose(MAINLINE_OBSERVER) {
            alone(MAINLINE_OBSERVER, mainline::test_observer(&kernel))?;
        }
        if chose(MAINLINE_DEMO) {
            let mib = demo::DEFAULT_MEMORY_MIB;
            run::step(&format!(
                "the demo beside mainline LUO: a {mib} MiB memfd kept by luoctl agent"
            ));
            let timeline = alone(
                MAINLINE_DEMO,
                demo::Guest::observer(&kernel).and_then(|guest| guest.cycle(mib, |_, _, _| {})),
            )?;
            eprintln!("    demo: ok ({})", timeline::summary(&timeline));
        }
        systemd::run_each(&kernel, &under_systemd, |t| rerun(&format!("systemd/{t}")))?;
    }
    if only.is_empty() {
        eprintln!("all checks passed in {:.0?}", start.elapsed());
    } else {
        eprintln!("{} tests passed in {:.0?}", chosen.len(), start.elapsed());
    }
    Ok(())
}

/// The command that runs the test `name` alone.
fn rerun(name: &str) -> String {
    format!("cargo xtask test {name}")
}

/// `result`, a failure of the test `name` followed by the command that runs it alone.
fn alone<T>(name: &str, result: Result<T>) -> Result<T> {
    result.map_err(|report| scenario::rerun_alone(&report, &rerun(name)))
}

/// The names of `all` that `only` selects: each word is a name, or the group of the names
/// `WORD/...`; all of them when `only` is empty.
fn select(all: &[String], only: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = only
        .iter()
        .find(|word| !all.iter().any(|name| selects(word, name)))
    {
        return Err(format!(
            "no test or group '{unknown}'; `cargo xtask test --list` names them"
        ));
    }
    Ok(all
        .iter()
        .filter(|name| only.is_empty() || only.iter().any(|word| selects(word, name)))
        .cloned()
        .collect())
}

fn selects(word: &str, name: &str) -> bool {
    name == word
        || name
            .strip_prefix(word)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The tests of `group` among `chosen`, without the group's prefix.
fn in_group<'a>(chosen: &'a [String], group: &str) -> Vec<&'a str> {
    chosen
        .iter()
        .filter_map(|name| name.strip_prefix(group)?.strip_prefix('/'))
        .collect()
}

/// Runs the host's check `name` (one of [`HOST`]).
fn host(name: &str) -> Result {
    match name {
        "fmt" => {
            run::step("cargo fmt --check");
            run::run(&mut cargo(&["fmt", "--all", "--", "--check"]))
        }
        "clippy" => {
            run::step("cargo clippy (warnings denied)");
            run::run(&mut cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        }
        "unit" => {
            run::step("cargo test (unit, property, integration, doc tests, ABI document)");
            run::run(&mut cargo(&["test", "--workspace", "--all-features"]))
        }
        "doc" => {
            run::step("cargo doc (warnings denied)");
            run::run(
                cargo(&["doc", "--workspace", "--no-deps", "--all-features"])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )
        }
        "scripts" => scripts::check(),
        "package" => publish::run(),
        "session-uapi" => session_uapi::check(),
        "loom" => loom(),
        other => Err(format!("no host check '{other}'")),
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).current_dir(cache::workspace());
    cmd
}

/// The loom models of the sysfs poll protocol, in release mode and their own target directory
/// (a different `--cfg` would otherwise rebuild the main one each time).
fn loom() -> Result {
    run::step("loom models (release, --cfg loom)");
    let start = Instant::now();
    run::run(
        cargo(&[
            "test",
            "--release",
            "-p",
            "luo-state",
            "--test",
            "loom_kernfs",
            "--test",
            "loom_counter",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", cache::workspace().join("target/loom")),
    )?;
    eprintln!("    loom: {:.1?} (build included)", start.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn every_name_is_unique_and_selects_itself_alone() {
        let all = names();
        for name in &all {
            assert_eq!(
                select(&all, &words(&[name])).unwrap(),
                std::slice::from_ref(name)
            );
        }
    }

    #[test]
    fn a_group_selects_its_tests_in_order() {
        let all = names();
        let kernel = select(&all, &words(&["kernel"])).unwrap();
        assert_eq!(kernel.len(), kernel_tests::TESTS.len());
        assert!(kernel.iter().all(|name| name.starts_with("kernel/")));
        assert_eq!(select(&all, &[]).unwrap(), all);
    }

    #[test]
    fn the_quick_loop_names_tests_that_exist_in_the_full_order() {
        let all = names();
        let quick = select(&all, &quick()).unwrap();
        assert_eq!(quick.len(), QUICK.len(), "each quick name is one test");
        let positions: Vec<usize> = QUICK
            .iter()
            .map(|name| all.iter().position(|n| n == name).unwrap())
            .collect();
        assert!(
            positions.is_sorted(),
            "QUICK lists them in the order they run"
        );
    }

    #[test]
    fn the_help_names_every_group_and_the_tests_of_no_group() {
        let flags = include_str!("flags.rs");
        let help = flags
            .split("/// The tests to run:")
            .nth(1)
            .and_then(|rest| rest.split("names: Vec<String>").next())
            .expect("the help of `test`'s names");
        let mut groups: Vec<String> = names()
            .iter()
            .filter_map(|name| name.split_once('/').map(|(group, _)| group.to_owned()))
            .collect();
        groups.dedup();
        for name in groups
            .iter()
            .map(String::as_str)
            .chain([PATCHES, CONFIG_MATRIX])
        {
            assert!(help.contains(&format!("`{name}`")), "{name} not in:{help}");
        }
    }

    #[test]
    fn an_unknown_name_is_refused() {
        let all = names();
        assert!(select(&all, &words(&["kernel/nope"])).is_err());
        assert!(
            select(&all, &words(&["kern"])).is_err(),
            "a group is a whole word"
        );
    }
}
