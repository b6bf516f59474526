//! Reading /proc for process liveness and identity.

use std::path::Path;

/// The state letter and start time (clock ticks after boot) of `pid`, from
/// /proc/PID/stat; `None` if the process does not exist.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let data = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&data)
}

/// Parse the contents of /proc/PID/stat (the command may contain spaces and
/// parentheses, so split after the last ')').
pub fn parse_stat(data: &str) -> Option<(char, u64)> {
    let rest = &data[data.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; start time is field 22, i.e. 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is alive (not gone, not a zombie) and still the process that
/// started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// Inode of a namespace link such as /proc/self/ns/pid, to tell whether two
/// processes share a namespace.
pub fn ns_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line =
            "123 (a (b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (_, start) = stat(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse_stat("no parens here"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }
}
