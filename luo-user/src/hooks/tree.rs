//! The processes below a hook's reaper, read from `/proc`.
//!
//! The reaper is a child subreaper, so everything the hook started and that is still running
//! is below it: a process whose parent exited is re-parented to the reaper, not to init.

use std::collections::HashMap;

use rustix::process::Pid;

/// The live processes below `root` (zombies left out: they are dead, and the reaper reaps
/// them), parents before their children. Empty when `/proc` cannot be read.
pub(crate) fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit while it is read: then it is not there.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            if state != 'Z' {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![root.as_raw_pid()];
    while let Some(parent) = todo.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            found.extend(Pid::from_raw(child));
            todo.push(child);
        }
    }
    found
}

/// The state and parent of `/proc/PID/stat`: `PID (COMM) STATE PPID ...`, where COMM may hold
/// spaces and parentheses, so the fields start after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped_over() {
        assert_eq!(parse_stat("42 (a) b (c) S 7 42 42 0 -1"), Some(('S', 7)));
    }

    #[test]
    fn this_process_is_below_its_parent() {
        let me = rustix::process::getpid();
        let parent = rustix::process::getppid().expect("the test runner is our parent");
        assert!(descendants(parent).contains(&me));
    }
}
