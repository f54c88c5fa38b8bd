//! The live update across kexec in a guest: the cycle the demo shows, and its failure paths.
//!
//! One guest runs one shell script; a kexec reboot starts the next kernel with the same
//! command line (plus the words a test appends), so the guest runs the same script again in the
//! new kernel, which tells the boots apart by the module's live-update generation (read from
//! sysfs, handed over in KHO) or by a word the test appended to the command line.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::build::cache;
use crate::build::module::{self, Module};
use crate::guest::runner::{self, GuestOptions, GuestRun, Stream};
use crate::run::{self, Result};
use crate::scenario::kernel_tests;
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
    run::step("userspace for the guest: luoctl, the workloads, guest checks");
    run::run(
        Command::new("cargo")
            .args([
                "build",
                "--quiet",
                "-p",
                "luo-user",
                "-p",
                "luoctl",
                "--bins",
                "--examples",
            ])
            .current_dir(cache::workspace()),
    )?;
    kernel_tests::build_binary()?;
    let dir = cache::scratch("liveupdate")?;
    Ok(Tools { module, dir })
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

    /// The script's preamble: variables, debugfs (KHO's directory tells `luoctl kexec` that
    /// KHO is on), and the module loaded; it reads this boot's arrival from the previous
    /// kernel's record, so `GEN` and `STATE0` say which boot this is.
    fn preamble(&self) -> String {
        format!(
            "set -eu\n\
             LUOCTL=target/debug/luoctl\n\
             CHECK=target/debug/luo-guest-tests\n\
             DIR={dir}\n\
             BZIMAGE={bz}\n\
             KO={ko}\n\
             grep -q ' /sys/kernel/debug debugfs' /proc/mounts || mount -t debugfs none /sys/kernel/debug\n\
             insmod \"$KO\" selftest=1\n\
             GEN=$(cat /sys/kernel/liveupdate/generation)\n\
             STATE0=$(cat /sys/kernel/liveupdate/state)\n\
             {SHELL_HELPERS}",
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

/// Shell helpers: `wait_file FILE TENTHS` waits for a file to appear; `cmdline_word NAME` reads
/// a word of the kernel command line.
const SHELL_HELPERS: &str = r#"
wait_file() {
    i=0
    while [ ! -e "$1" ]; do
        i=$((i+1)); [ $i -lt "$2" ] || { echo "demo: timed out waiting for $1"; return 1; }
        sleep 0.1
    done
}
# The last `NAME=VALUE` word of the kernel command line for NAME, or nothing: the tests append
# a word at each kexec (after --reuse-cmdline the earlier ones are still there).
cmdline_word() {
    tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1
}
"#;

/// One guest run of a scenario: its id (what names it on the command line), its name, the
/// words on the first kernel's command line, the script, the line the last boot prints when the
/// scenario held, and text the guest's output must also hold (what a tool reported on the way).
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
        body: r#"
case "$GEN" in
0)  [ "$STATE0" = normal ] || { echo "a cold boot came up $STATE0"; exit 1; }
    $LUOCTL prepare
    $LUOCTL kexec --no-wait --reuse-cmdline "$BZIMAGE"
    echo "luoctl kexec returned"; exit 1 ;;
1)  rmmod luo
    $CHECK arrival --ko "$KO" updated 1
    $LUOCTL prepare
    $LUOCTL kexec --no-wait --reuse-cmdline "$BZIMAGE"
    echo "luoctl kexec returned"; exit 1 ;;
2)  rmmod luo
    $CHECK arrival --ko "$KO" updated 2
    echo "two live updates: generation 2" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
"#,
        expected: "two live updates: generation 2",
        reported: &[],
    },
    Scenario {
        id: "agent-hooks",
        name: "luoctl agent runs hooks on both sides of a live update, then finishes",
        append: &[],
        body: r#"
HOOKS="$DIR/hooks"
case "$GEN" in
0)  mkdir -p "$HOOKS/prepared.d" "$HOOKS/updated.d"
    printf '#!/bin/sh\necho "saved at generation $LUO_GENERATION in state $LUO_STATE" > "%s/saved"\n' "$DIR" > "$HOOKS/prepared.d/10-save"
    printf '#!/bin/sh\ncat "%s/saved"\necho "restored at generation $LUO_GENERATION"\n' "$DIR" > "$HOOKS/updated.d/10-restore"
    chmod +x "$HOOKS/prepared.d/10-save" "$HOOKS/updated.d/10-restore"
    $LUOCTL agent --hooks-dir "$HOOKS" > "$DIR/agent.out" 2>&1 &
    i=0
    until grep -q 'watching' "$DIR/agent.out"; do
        i=$((i+1)); [ $i -lt 600 ] || { echo "the agent never started"; cat "$DIR/agent.out"; exit 1; }
        sleep 0.1
    done
    $LUOCTL prepare
    # kexec waits for the agent's prepared hooks before it loads: the saved file is there then.
    $LUOCTL kexec --load-only --reuse-cmdline "$BZIMAGE"
    cat "$DIR/agent.out"
    grep -q 'saved at generation 0 in state prepared' "$DIR/saved" || { echo "the prepared hook did not run"; exit 1; }
    kexec -e
    echo "kexec -e returned"; exit 1 ;;
1)  $LUOCTL agent --hooks-dir "$HOOKS" --no-socket -n 1 2>&1 | tee "$DIR/agent.out"
    grep -q 'restored at generation 1' "$DIR/agent.out" || { echo "the updated hook did not run"; exit 1; }
    grep -q 'saved at generation 0' "$DIR/agent.out" || { echo "the saved state did not cross"; exit 1; }
    echo "hooks on both sides: $($LUOCTL state), generation $($LUOCTL generation)" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
"#,
        expected: "hooks on both sides: normal, generation 1",
        reported: &[],
    },
    Scenario {
        id: "plain-kexec",
        name: "a plain kexec_file_load from normal comes up normal, generation 0",
        append: &[],
        body: r#"
if [ "$(cmdline_word luo_step)" = plain ]; then
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "the handover record says [normal], not [frozen]"
    echo "plain kexec: normal, generation 0"
    exit 0
fi
kexec -s -l "$BZIMAGE" --reuse-cmdline --append=luo_step=plain
kexec -e
echo "kexec -e returned"; exit 1
"#,
        expected: "plain kexec: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "cancelled",
        name: "prepare, load the image, cancel: the image is unloaded; with it kept, a kexec comes up normal",
        append: &[],
        body: r#"
if [ "$(cmdline_word luo_step)" = cancelled ]; then
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "the handover record says [normal], not [frozen]"
    echo "cancelled live update, image unloaded, and kept: normal, generation 0"
    exit 0
fi
# `luoctl cancel` unloads what `kexec --load-only` loaded, so that a later `systemctl kexec`
# cannot turn the cancelled live update into a plain one.
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append luo_step=cancelled "$BZIMAGE"
[ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "no image loaded"; exit 1; }
$LUOCTL cancel
[ "$(cat /sys/kernel/kexec_loaded)" = 0 ] || { echo "cancel left the image loaded"; exit 1; }
# Kept on purpose, the image starts a kernel that comes up normal: the record says so.
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append luo_step=cancelled "$BZIMAGE"
$LUOCTL cancel --keep-loaded
kexec -e
echo "kexec -e returned"; exit 1
"#,
        expected: "cancelled live update, image unloaded, and kept: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "forged-marker",
        name: "luo.handover=7 on a cold kernel's command line is ignored: normal",
        append: &["luo.handover=7"],
        body: r#"
rmmod luo
$CHECK arrival --ko "$KO" normal 0 "no kexec handover data"
echo "forged marker: normal, generation 0"
"#,
        expected: "forged marker: normal, generation 0",
        reported: &[],
    },
    Scenario {
        id: "damaged-records",
        name: "each damaged record is refused: normal, the reason in the log",
        append: &[],
        body: r#"
# Boot n+1 checks the damage boot n did: magic, version, size, state, in that order.
REASONS="bad_magic version_3_unknown record_states_size_31 impossible_state_4294967295"
STEP=$(cmdline_word luo_damage)
if [ -n "$STEP" ]; then
    REASON=$(echo $REASONS | cut -d' ' -f$((STEP + 1)) | tr _ ' ')
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "handover record refused: $REASON"
    echo "damage $STEP refused: $REASON"
    NEXT=$((STEP + 1))
else
    NEXT=0
fi
if [ "$NEXT" = 4 ]; then echo "every damaged record was refused"; exit 0; fi
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append "luo_damage=$NEXT" "$BZIMAGE"
$CHECK freeze
$CHECK damage "$NEXT"
kexec -e
echo "kexec -e returned"; exit 1
"#,
        expected: "every damaged record was refused",
        reported: &[],
    },
    Scenario {
        id: "kho-off",
        name: "KHO off: the module says so, luoctl kexec refuses",
        append: &["kho=off"],
        body: r#"
dmesg | grep -q 'kexec handover (KHO) is off' || { echo "the module did not log that KHO is off"; exit 1; }
$LUOCTL prepare
if $LUOCTL kexec --no-wait --load-only --reuse-cmdline "$BZIMAGE" 2> "$DIR/kexec.err"; then
    echo "luoctl kexec loaded an image with KHO off"; exit 1
fi
cat "$DIR/kexec.err"
grep -q 'KHO' "$DIR/kexec.err" || { echo "the refusal does not name KHO"; exit 1; }
$LUOCTL cancel
echo "KHO off: refused, $($LUOCTL state)"
"#,
        expected: "KHO off: refused, normal",
        reported: &[],
    },
    Scenario {
        id: "no-image",
        name: "a kexec reboot with no image loaded leaves prepared; cancel returns to normal",
        append: &[],
        body: r#"
$LUOCTL prepare
kexec -u || true
if kexec -e; then echo "kexec -e without an image returned success"; exit 1; fi
S=$($LUOCTL state)
[ "$S" = prepared ] || { echo "after the failed reboot the state is $S"; exit 1; }
$LUOCTL cancel
echo "after cancel: $($LUOCTL state)"
"#,
        expected: "after cancel: normal",
        reported: &[],
    },
    Scenario {
        id: "failing-hook",
        name: "a failing agent hook cancels and leaves normal",
        append: &[],
        body: r#"
mkdir -p "$DIR/hooks/prepared.d"
printf '#!/bin/sh\necho "checkpoint: the workload did not answer" >&2\nexit 1\n' > "$DIR/hooks/prepared.d/10-fail"
chmod +x "$DIR/hooks/prepared.d/10-fail"
# Two states: prepared, and normal after its cancel.
$LUOCTL agent --hooks-dir "$DIR/hooks" -n 2 > "$DIR/agent.out" 2>&1 &
AGENT_PID=$!
wait_file /run/luo/agent.sock 600
$LUOCTL prepare
if $LUOCTL kexec --load-only --reuse-cmdline "$BZIMAGE" 2> "$DIR/kexec.err"; then
    echo "luoctl kexec loaded a kernel after a failed prepared hook"; exit 1
fi
cat "$DIR/kexec.err"
set +e; wait $AGENT_PID; STATUS=$?; set -e
cat "$DIR/agent.out"
[ "$STATUS" = 8 ] || { echo "the agent exited $STATUS, expected 8 (a hook failed)"; exit 1; }
echo "after the failed hook: $($LUOCTL state)"
"#,
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
            failures.push(format!("{report}\nrerun it alone: {}", rerun(id)));
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
