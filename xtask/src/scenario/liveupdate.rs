//! The live update across kexec in a guest: the cycle the demo shows, and its failure paths.
//!
//! One guest runs one shell script; a kexec reboot starts the next kernel with the same
//! command line (plus the words a test appends), so the guest runs the same script again in the
//! new kernel, which tells the boots apart by the module's live-update generation (read from
//! sysfs, handed over in KHO) or by a word the test appended to the command line.

use std::path::PathBuf;
use std::time::Instant;

use crate::build::module::{self, Module};
use crate::build::{cache, userspace};
use crate::guest::runner::{self, GuestOptions, GuestRun, Stream};
use crate::run::{self, Result};
use crate::scenario::{self, kernel_tests};
use crate::scenario::{demo, timeline};

/// The binaries the guest runs, built on the host and seen through 9p.
pub struct Tools {
    module: Module,
    /// A scratch directory the guest may write; it lives on the host, so it survives kexec.
    dir: PathBuf,
}

/// Builds the module, `luoctl`, the workloads and the guest checks.
pub fn prepare_tools() -> Result<Tools> {
    let module = module::ensure()?;
    build_userspace()?;
    kernel_tests::build_binary()?;
    let dir = cache::scratch("liveupdate")?;
    Ok(Tools { module, dir })
}

/// Builds `luoctl` and the workloads (luo-user's examples), which the guests run from the
/// checkout through 9p.
pub fn build_userspace() -> Result {
    run::step("userspace for the guest: luoctl, the workloads");
    run::run(userspace::cargo_build().args([
        "-p",
        "luo-user",
        "-p",
        "luoctl",
        "--bins",
        "--examples",
    ]))
}

/// Builds `luoctl` alone, for the guests that run nothing else of ours: no module, no kernel
/// of its own.
pub fn build_luoctl() -> Result {
    run::step("userspace for the guest: luoctl");
    run::run(userspace::cargo_build().args(["-p", "luoctl", "--bin", "luoctl"]))
}

/// Empties `dir`: each guest run starts from a clean scratch directory, so no file of an
/// earlier run (a checkpoint, a ready mark) can stand in for one of this run.
pub fn clear(dir: &std::path::Path) -> Result {
    for entry in std::fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))? {
        let path = entry
            .map_err(|err| format!("{}: {err}", dir.display()))?
            .path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|err| format!("cannot remove {}: {err}", path.display()))?;
    }
    Ok(())
}

impl Tools {
    fn bzimage(&self) -> PathBuf {
        self.module.kernel.build.join("arch/x86/boot/bzImage")
    }

    /// The script's preamble: the variables only the host knows, the shell helpers, then
    /// `preamble.sh` (which loads the module and reads `GEN` and `STATE0`, which say which
    /// boot this is).
    fn preamble(&self) -> String {
        format!(
            "DIR={dir}\nBZIMAGE={bz}\nKO={ko}\n{lib}{PREAMBLE}",
            lib = scenario::SCRIPT_LIB,
            dir = runner::shell_quote(&self.dir.to_string_lossy()),
            bz = runner::shell_quote(&self.bzimage().to_string_lossy()),
            ko = runner::shell_quote(&self.module.ko.to_string_lossy()),
        )
    }

    /// Runs `body` after the preamble, with `append` on the first kernel's command line.
    fn run_with(
        &self,
        what: &str,
        body: &str,
        append: &[&str],
        on_line: impl FnMut(Stream, &str, Instant),
    ) -> Result<GuestRun> {
        clear(&self.dir)?;
        let options = GuestOptions {
            rw_dirs: vec![self.dir.clone()],
            append: append.iter().map(|word| (*word).to_owned()).collect(),
            ..GuestOptions::default()
        };
        let script = format!("{}{body}", self.preamble());
        let run = runner::run_in_guest_with(&self.module.kernel.build, &script, &options, on_line)?;
        if run.success() {
            Ok(run)
        } else {
            Err(runner::failure_report(what, &run))
        }
    }
}

/// The preamble every scenario's script runs after: `set -eu`, debugfs, the module loaded,
/// `GEN` and `STATE0`, and the shell helper `cmdline_word`; see its header.
const PREAMBLE: &str = include_str!("../../../tests/guest-scripts/liveupdate/preamble.sh");

/// One guest run of a scenario: its id (what names it on the command line), its name, the
/// words on the first kernel's command line, the script (`tests/guest-scripts/liveupdate/ID.sh`,
/// run after the preamble), the line the last boot prints when the scenario held, and text the
/// guest's output must also hold (what a tool reported on the way).
struct Scenario {
    id: &'static str,
    name: &'static str,
    append: &'static [&'static str],
    body: &'static str,
    expected: &'static str,
    reported: &'static [&'static str],
}

/// The handover through KHO and the failure paths of the v3 state machine (see
/// `Documentation/design.md`), each in its own guest.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "two-updates",
        name: "two live updates in a row: generations 1 and 2, reloads updated until finish",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/two-updates.sh"),
        expected: "two live updates: generation 2",
        reported: &[],
    },
    Scenario {
        id: "agent-hooks",
        name: "luoctl agent runs hooks on both sides of a live update, then finishes",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/agent-hooks.sh"),
        expected: "hooks on both sides: normal, generation 1",
        reported: &[],
    },
    Scenario {
        id: "plain-kexec",
        name: "a plain kexec_file_load from normal comes up normal, generation 0",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/plain-kexec.sh"),
        expected: "plain kexec: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "cancelled",
        name: "prepare, load the image, cancel: the image is unloaded; with it kept, a kexec comes up normal",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/cancelled.sh"),
        expected: "cancelled live update, image unloaded, and kept: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "forged-marker",
        name: "luo.handover=7 on a cold kernel's command line is ignored: normal",
        append: &["luo.handover=7"],
        body: include_str!("../../../tests/guest-scripts/liveupdate/forged-marker.sh"),
        expected: "forged marker: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "damaged-records",
        name: "each damaged record is refused: normal, the reason in the log",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/damaged-records.sh"),
        expected: "every damaged record was refused",
        reported: &[],
    },
    Scenario {
        id: "kho-off",
        name: "KHO off: the module says so, luoctl kexec refuses",
        append: &["kho=off"],
        body: include_str!("../../../tests/guest-scripts/liveupdate/kho-off.sh"),
        expected: "KHO off: refused, normal",
        reported: &[],
    },
    Scenario {
        id: "no-image",
        name: "a kexec reboot with no image loaded leaves prepared; cancel returns to normal",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/no-image.sh"),
        expected: "after cancel: normal",
        reported: &[],
    },
    Scenario {
        id: "failing-hook",
        name: "a failing agent hook cancels and leaves normal",
        append: &[],
        body: include_str!("../../../tests/guest-scripts/liveupdate/failing-hook.sh"),
        expected: "after the failed hook: normal",
        reported: &["prepared.d/10-fail failed", "live update cancelled"],
    },
];

/// The name of the whole cycle as a test (`cycle`, `demo`'s run).
pub const CYCLE: &str = "cycle";

/// The tests' ids: the cycle, then the scenarios.
pub fn names() -> impl Iterator<Item = &'static str> {
    std::iter::once(CYCLE).chain(SCENARIOS.iter().map(|s| s.id))
}

/// Runs the tests of `ids` (of [`names`]), each in its own guest, and reports every failure,
/// each with the guest console's tail and the command `rerun(id)` that runs that test alone.
pub fn run_each(tools: &Tools, ids: &[&str], rerun: impl Fn(&str) -> String) -> Result {
    run::step("live update across kexec (QEMU)");
    let mut failures = Vec::new();
    for id in ids {
        if let Err(report) = run_one(tools, id) {
            eprintln!("    {id}: FAILED");
            failures.push(scenario::rerun_alone(&report, &rerun(id)));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// Runs the cycle, or the scenario `id`.
fn run_one(tools: &Tools, id: &str) -> Result {
    if id == CYCLE {
        // The demo's standalone flavour: luoctl agent, the hooks of contrib/, the counter.
        let timeline = demo::Guest::build(true)?.cycle(0, |_, _, _| {})?;
        eprintln!("    cycle: ok ({})", timeline::summary(&timeline));
        return Ok(());
    }
    let scenario = SCENARIOS
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| format!("no live-update test '{id}'"))?;
    let name = scenario.name;
    let run = tools.run_with(name, scenario.body, scenario.append, |_, _, _| {})?;
    let expected = scenario.expected;
    if !run.stdout.lines().any(|line| line.trim() == expected) {
        return Err(format!(
            "{name}: expected the line '{expected}'; the guest printed:\n{}",
            run.stdout
        ));
    }
    if let Some(missing) = scenario.reported.iter().find(|t| !run.stdout.contains(*t)) {
        return Err(format!(
            "{name}: the guest's output lacks '{missing}':\n{}",
            run.stdout
        ));
    }
    eprintln!("    {id}: ok ({:.1?}): {name}", run.elapsed);
    Ok(())
}

/// `cargo xtask test-liveupdate [WORD...]`: the cycle and the failure paths as tests.
///
/// With words, only the tests whose id is one of them, or whose name contains one, run.
pub fn test_all(only: &[String]) -> Result {
    let chosen: Vec<&str> = names()
        .filter(|id| {
            let name = SCENARIOS
                .iter()
                .find(|s| s.id == *id)
                .map_or("", |s| s.name);
            only.is_empty()
                || only
                    .iter()
                    .any(|word| word == id || name.contains(word.as_str()))
        })
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no live-update test matches {only:?} (there are: {})",
            names().collect::<Vec<_>>().join(", ")
        ));
    }
    let tools = prepare_tools()?;
    run_each(&tools, &chosen, |id| {
        format!("cargo xtask test-liveupdate {id}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::lines;

    #[test]
    fn what_the_scenarios_look_for_in_the_agents_log_the_agent_logs() {
        // The failing hook's scenario finds the agent's line for the hook and for the cancel.
        let failing = SCENARIOS.iter().find(|s| s.id == "failing-hook").unwrap();
        assert_eq!(
            failing.reported,
            ["prepared.d/10-fail failed", "live update cancelled"]
        );
        assert!(failing.body.contains("prepared.d/10-fail"));
        let source = lines::agent_log_source();
        for format in [
            "format!(\"{} failed\", hook.name)",
            "self.bad(\"live update cancelled\")",
        ] {
            assert!(
                source.contains(format),
                "luoctl agent no longer logs {format}"
            );
        }
        // Its hook waits for luoctl kexec's line, and the kexec's status is the agent's refusal.
        let kexec = include_str!("../../../luoctl/src/kexec.rs");
        assert!(failing.body.contains("grep -q 'waiting for the agent'"));
        assert!(kexec.contains("\"luoctl: waiting for the agent's prepared hooks"));
        let exit = include_str!("../../../luoctl/src/exit.rs");
        assert!(failing.body.contains("[ \"$KEXEC\" = 10 ]"));
        assert!(exit.contains("pub const AGENT: u8 = 10;"));
        let hooks = include_str!("../../../tests/guest-scripts/liveupdate/agent-hooks.sh");
        lines::assert_agent_logs(hooks, &[("grep -q watching", "\"watching {} (state: ")]);
    }

    #[test]
    fn every_scenario_prints_its_expected_line() {
        for scenario in SCENARIOS {
            assert!(
                lines::prints(scenario.body, scenario.expected),
                "{}: '{}'",
                scenario.id,
                scenario.expected
            );
        }
    }
}
