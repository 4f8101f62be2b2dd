//! Reading `/proc`: process start times (to tell a pid from its reuse) and per-process usage.

use std::time::Duration;

/// The state letter and start time (clock ticks since boot) of `pid`, from `/proc/<pid>/stat`.
/// `None` if there is no such process.
pub(crate) fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and ')': split after the
    // last ')'. Then field 3 (state) is index 0 and field 22 (starttime) index 19.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is alive (not a zombie) and started at `start_time`: the same process, not a
/// later one that reused the pid.
pub(crate) fn is_same_live_process(pid: i32, start_time: u64) -> bool {
    matches!(stat(pid), Some((state, start)) if start == start_time && state != 'Z' && state != 'X')
}

/// CPU time (user + system) and resident memory of one process.
pub(crate) fn usage(pid: i32) -> Option<(Duration, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (indices 11 and 12), in USER_HZ ticks, which Linux
    // fixes at 100 for user space on every architecture we run on.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    Some((Duration::from_millis(ticks * 10), rss_kb * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let (state, start) = stat(pid).unwrap();
        assert_ne!(state, 'Z');
        assert!(is_same_live_process(pid, start));
        assert!(!is_same_live_process(pid, start + 1));
        assert!(usage(pid).unwrap().1 > 0);
        assert!(stat(i32::MAX).is_none());
    }
}
