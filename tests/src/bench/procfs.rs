//! What `/proc` says about the benchmark's processes.

/// The pids whose parent is `parent`, from `/proc/*/stat`.
pub fn children_of(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let (_, ppid) = stat(pid)?;
        (u32::try_from(ppid).ok()? == parent).then_some(pid)
    })
    .collect()
}

/// The scheduler state of `pid` (`R`, `S`, `T`, ...), `None` once it is gone.
pub fn state_of(pid: i32) -> Option<char> {
    stat(pid).map(|(state, _)| state)
}

/// The state and the parent pid in `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let me = std::process::id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state_of(pid) != Some('S') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let seen = (state_of(pid), children_of(me).contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen, (Some('S'), true));
        assert_eq!(state_of(pid), None);
    }
}
