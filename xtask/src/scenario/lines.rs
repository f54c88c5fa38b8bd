//! The text lines the host reads from the guests that no shared Rust type defines: the lines
//! the guest scripts and the example hooks print.
//!
//! luo's kernel lines are `luo_sysfs_abi::log`'s, the kernel's own are
//! [`crate::guest::console`]'s, the workloads' are `luo-user/examples/shared/report.rs`'s and
//! luoctl's JSON records are `luoctl/tests/records/`'s; producers and readers use those. A
//! shell script cannot import Rust, so each script line is defined here once, and tests check
//! that the script that prints it still does, that what the scripts grep in the kernel log is
//! what the module prints, and that what they grep in the agent's human log (which has no
//! shared type) is what `luoctl/src/agent.rs` formats.

/// The demo script's last line, before the state `luoctl state` read.
pub const DEMO_FINAL_STATE: &str = "demo: final state ";

/// The example `updated` hook's line (`contrib/hooks/updated.d/10-restore`), before the
/// checkpoint it read back.
pub const RESTORE_FOUND: &str = "restore: found checkpoint ";

/// The example `prepared` hook's line (`contrib/hooks/prepared.d/10-checkpoint`), before the
/// checkpoint it saved.
pub const CHECKPOINT_SAVED: &str = "checkpoint: saved ";

/// Whether `script` has an `echo "..."` that prints `line`: each expansion in the echo
/// (`$NAME`, `${NAME}`, `$(...)`) stands for any text.
#[cfg(test)]
pub fn prints(script: &str, line: &str) -> bool {
    script.lines().any(|text| {
        text.split("echo \"")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(echoed, _)| echoed))
            .any(|echoed| matches_echo(echoed, line))
    })
}

/// Whether `line` is what the echoed text `echoed` can print.
#[cfg(test)]
fn matches_echo(echoed: &str, line: &str) -> bool {
    match echoed.find('$') {
        None => echoed == line,
        Some(at) => {
            let (literal, expansion) = echoed.split_at(at);
            let Some(rest_of_line) = line.strip_prefix(literal) else {
                return false;
            };
            let after = skip_expansion(expansion);
            // The expansion prints at least one byte; try every length.
            (1..=rest_of_line.len())
                .filter(|len| rest_of_line.is_char_boundary(*len))
                .any(|len| matches_echo(after, &rest_of_line[len..]))
        }
    }
}

/// `text`, which starts with `$`, after its first expansion.
#[cfg(test)]
fn skip_expansion(text: &str) -> &str {
    let rest = &text[1..];
    let closing = match rest.chars().next() {
        Some('(') => Some(')'),
        Some('{') => Some('}'),
        _ => None,
    };
    match closing {
        // Nested parentheses: count them.
        Some(close) => {
            let open = if close == ')' { '(' } else { '{' };
            let mut depth = 0;
            for (at, c) in rest.char_indices() {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return &rest[at + 1..];
                    }
                }
            }
            ""
        }
        None => rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    }
}

/// The source of `luoctl agent`'s log (its own file, and luo-user's hooks module, which words
/// a hook's failure for both agents), with Rust's string continuations (`\` at a line's end
/// and the next line's indent) joined, so a line's format reads whole.
#[cfg(test)]
pub fn agent_log_source() -> String {
    let source = [
        include_str!("../../../luoctl/src/agent.rs"),
        include_str!("../../../luo-user/src/hooks/mod.rs"),
    ]
    .concat();
    let mut joined = String::with_capacity(source.len());
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let mut line = line.to_owned();
        while let Some(open) = line.strip_suffix('\\') {
            line = format!("{open}{}", lines.next().unwrap_or_default().trim_start());
        }
        joined.push_str(&line);
        joined.push('\n');
    }
    joined
}

/// Checks `greps`: each is a text that `script` searches the agent's log for, and the
/// fragment of the agent's format string that prints it (`{...}` where the line has a value).
#[cfg(test)]
pub fn assert_agent_logs(script: &str, greps: &[(&str, &str)]) {
    let source = agent_log_source();
    for (grep, format) in greps {
        assert!(script.contains(grep), "the script no longer greps '{grep}'");
        assert!(
            source.contains(format),
            "luoctl agent no longer logs '{format}', which a script greps as '{grep}'"
        );
    }
}

#[cfg(test)]
mod tests {
    use luo_state::{Damage, Record, RecordError};
    use luo_sysfs_abi::log::{self, Line, Message, NotALiveUpdate, NotLoading, Ready};
    use luo_sysfs_abi::{Flavour, State};

    use super::*;
    use crate::scenario::report::Report;

    /// `text` with a `grep` basic expression's escapes taken out.
    fn unescaped(pattern: &str) -> String {
        pattern.replace('\\', "")
    }

    /// luo's line as the kernel log shows it.
    fn logged(line: Line<'_>) -> String {
        format!("{}{line}", log::PREFIX)
    }

    #[test]
    fn the_scripts_print_the_lines_the_host_reads() {
        let demo = include_str!("../../../tests/guest-scripts/demo.sh");
        assert!(prints(demo, &format!("{DEMO_FINAL_STATE}normal")));
        let restore = include_str!("../../../contrib/hooks/updated.d/10-restore");
        assert!(prints(restore, &format!("{RESTORE_FOUND}42")));
        let checkpoint = include_str!("../../../contrib/hooks/prepared.d/10-checkpoint");
        assert!(prints(checkpoint, &format!("{CHECKPOINT_SAVED}42")));
    }

    #[test]
    fn an_echo_matches_with_its_expansions_as_any_text() {
        let script = "echo \"KHO off: refused, $($LUOCTL state)\"\necho \"gen ${GEN}!\"";
        assert!(prints(script, "KHO off: refused, normal"));
        assert!(prints(script, "gen 1!"));
        assert!(!prints(script, "KHO off: refused, "));
        assert!(!prints(script, "KHO off: accepted, normal"));
    }

    /// A script, a pattern it searches the kernel log for, and the line of luo's it must find.
    struct Grep {
        script: &'static str,
        pattern: &'static str,
        finds: String,
    }

    #[test]
    fn what_the_scripts_grep_in_the_log_is_what_the_module_prints() {
        let ready = Ready {
            flavour: Flavour::Observer,
            state: State::Updated,
            generation: 1,
            init_us: 812,
        };
        let builtin = include_str!("../../../tests/guest-scripts/builtin-liveupdate.sh");
        let refusal = include_str!("../../../tests/guest-scripts/mainline-refusal.sh");
        let refused = logged(Line::NotLoading(NotLoading::MiscNameTaken {
            mainline: true,
        }));
        let not_frozen = logged(Line::NotALiveUpdate(NotALiveUpdate::NotFrozen(
            State::Normal,
        )));
        let greps = [
            Grep {
                script: builtin,
                pattern: "luo: Ready in state \\[updated\\]",
                finds: logged(Line::Ready(ready)),
            },
            Grep {
                script: refusal,
                pattern: "luo: not loading",
                finds: refused.clone(),
            },
            Grep {
                script: refusal,
                pattern: "CONFIG_LIVEUPDATE_SYSFS_API",
                finds: refused,
            },
            Grep {
                script: include_str!("../../../tests/guest-scripts/liveupdate/kho-off.sh"),
                pattern: "kexec handover (KHO) is off",
                finds: logged(Line::KhoOff),
            },
            Grep {
                script: include_str!("../../../tests/guest-scripts/liveupdate/cancelled.sh"),
                pattern: "the handover record says [normal], not [frozen]",
                finds: not_frozen.clone(),
            },
            Grep {
                script: include_str!("../../../tests/guest-scripts/liveupdate/plain-kexec.sh"),
                pattern: "the handover record says [normal], not [frozen]",
                finds: not_frozen,
            },
            Grep {
                script: include_str!("../../../tests/guest-scripts/liveupdate/forged-marker.sh"),
                pattern: "no kexec handover data",
                finds: logged(Line::NotALiveUpdate(NotALiveUpdate::NoHandoverData)),
            },
            Grep {
                script: DAMAGED,
                pattern: "handover record refused: $REASON",
                finds: logged(Line::NotALiveUpdate(NotALiveUpdate::Refused(&"bad magic"))),
            },
        ];
        for grep in greps {
            assert!(grep.script.contains(grep.pattern), "{}", grep.pattern);
            let fixed = unescaped(grep.pattern);
            let fixed = fixed.split('$').next().unwrap_or_default();
            assert!(grep.finds.contains(fixed), "'{fixed}' in {}", grep.finds);
            assert!(Message::find(&grep.finds).is_some(), "{}", grep.finds);
        }
    }

    const DAMAGED: &str =
        include_str!("../../../tests/guest-scripts/liveupdate/damaged-records.sh");

    #[test]
    fn the_damaged_records_script_expects_the_reason_each_damage_gets() {
        let words = DAMAGED
            .lines()
            .find_map(|line| line.strip_prefix("REASONS=\""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("the script names its reasons");
        let reasons: Vec<String> = words.split(' ').map(|w| w.replace('_', " ")).collect();
        assert_eq!(reasons.len(), Damage::ALL.len());
        for (damage, reason) in Damage::ALL.into_iter().zip(reasons) {
            let record = damage.apply(Record::new(State::Frozen, 0));
            let error: RecordError = luo_state::record::decode(&record.to_bytes())
                .expect_err("a damaged record is refused");
            let line = logged(Line::NotALiveUpdate(NotALiveUpdate::Refused(&error)));
            assert!(
                line.contains(&format!("handover record refused: {reason}")),
                "{damage:?}: {line}"
            );
        }
    }

    /// Every print of the module's, with what follows its `(` up to the first `,` or `)`.
    fn module_prints() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../luo-kmod/src");
        let mut prints = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, _) in source.match_indices("pr_") {
                let rest = &source[at..];
                let Some(open) = rest
                    .find("!(")
                    .filter(|open| rest[3..*open].bytes().all(|b| b.is_ascii_lowercase()))
                else {
                    continue;
                };
                let format = rest[open + 2..]
                    .split([',', ')'])
                    .next()
                    .unwrap_or_default()
                    .trim();
                prints.push((path.display().to_string(), format.to_owned()));
            }
        }
        prints
    }

    /// luo's lines are told from mainline's by their openings (`luo_sysfs_abi::log`), which
    /// holds only if the module prints nothing but `log::Line`s.
    #[test]
    fn the_module_prints_nothing_but_its_log_lines() {
        let prints = module_prints();
        assert!(prints.len() >= 15, "{prints:?}");
        for (file, format) in prints {
            assert_eq!(format, "\"{}\\n\"", "a print in {file} bypasses log::Line");
        }
    }

    #[test]
    fn what_the_scripts_grep_in_the_workloads_output_is_what_the_workloads_print() {
        let demo = include_str!("../../../tests/guest-scripts/demo.sh");
        let systemd = include_str!("../../../tests/guest-scripts/systemd-observer.sh");
        let running = Report::Running {
            session: "workload",
        };
        let stamped = Report::Stamped {
            mib: 64,
            millis: 9,
            check: 0x8f97,
        };
        let restored = Report::Restored {
            mib: 64,
            session: "workload",
            check: 0x8f97,
            millis: 7,
            resumes_at: 80,
        };
        for (script, grep, report) in [
            (demo, "grep -q 'running:'", running),
            (systemd, "'running:'", running),
            (systemd, "grep 'MiB stamped in'", stamped),
            (systemd, "grep -q 'restored .* check'", restored),
        ] {
            assert!(script.contains(grep), "{grep}");
            let pattern = grep.split('\'').nth(1).unwrap();
            let line = report.to_string();
            // `.*` is the only pattern the scripts use: its parts appear in order.
            let mut rest = line.as_str();
            for part in pattern.split(".*") {
                let at = rest
                    .find(part)
                    .unwrap_or_else(|| panic!("'{pattern}' in '{line}'"));
                rest = &rest[at + part.len()..];
            }
        }
    }

    #[test]
    fn what_the_observer_script_greps_in_the_agents_log_the_agent_logs() {
        let script = include_str!("../../../tests/guest-scripts/systemd-observer.sh");
        assert_agent_logs(
            script,
            &[
                ("'state updated at start'", "\"state {state} at start\""),
                (
                    "'preserved for the kexec'",
                    "its session stays, preserved for the kexec\"",
                ),
                (
                    "'session workload: finished'",
                    "\"session {name}: finished\"",
                ),
            ],
        );
    }

    #[test]
    fn the_line_the_observer_script_reads_is_mainlines_not_luos() {
        let observer = include_str!("../../../tests/guest-scripts/observer.sh");
        let pattern = "luo: Retrieved live update data, liveupdate number: ";
        assert!(observer.contains(pattern));
        assert_eq!(Message::find(&format!("{pattern}1")), None);
    }
}
