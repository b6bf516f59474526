//! Capabilities: docker's default set and `--cap-add`/`--cap-drop`.

use crate::error::{EngineError, Result};

/// Docker's default capability set for containers.
pub const DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines (0 to 40), in number order.
pub const ALL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Normalize a `--cap-add`/`--cap-drop` value as docker does: case does not
/// matter, `CAP_` is optional, `ALL` means every capability.
pub fn normalize(option: &'static str, name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(EngineError::InvalidOption {
            option,
            reason: format!("unknown capability {name:?}"),
        })
    }
}

/// The container's capabilities from normalized `add` and `drop` lists
/// (docker's rules: `--cap-drop ALL` starts from nothing, `--cap-add ALL`
/// from everything; adds apply before drops, except that after
/// `--cap-drop ALL` the adds are what is left). In number order.
pub fn resolve(add: &[String], drop: &[String], privileged: bool) -> Vec<String> {
    let has = |list: &[String], c: &str| list.iter().any(|x| x == c);
    let all_added = privileged || has(add, "ALL");
    let all_dropped = has(drop, "ALL");
    ALL.iter()
        .filter(|c| {
            if all_added && !all_dropped {
                return !has(drop, c) || privileged;
            }
            if all_dropped {
                return all_added || has(add, c);
            }
            (DEFAULT.contains(c) || has(add, c)) && !has(drop, c)
        })
        .map(|c| c.to_string())
        .collect()
}

/// The capabilities this process may grant (its bounding set, from
/// `/proc/self/status`); `None` when it cannot be read. A container cannot
/// get more: `--privileged` and `--cap-add ALL` mean "all of these", as in
/// docker (on this machine CAP_SYS_RESOURCE is missing, for one).
pub fn host_bounding() -> Option<Vec<String>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    let bits = u64::from_str_radix(hex, 16).ok()?;
    Some(
        ALL.iter()
            .enumerate()
            .filter(|(n, _)| bits & (1u64 << n) != 0)
            .map(|(_, c)| c.to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_host_bounding_set_is_read() {
        let b = host_bounding().unwrap();
        assert!(b.iter().any(|c| c == "CAP_CHOWN"), "{b:?}");
        assert!(b.iter().all(|c| ALL.contains(&c.as_str())));
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(
            normalize("--cap-add", "net_admin").unwrap(),
            "CAP_NET_ADMIN"
        );
        assert_eq!(
            normalize("--cap-add", "CAP_SYS_ADMIN").unwrap(),
            "CAP_SYS_ADMIN"
        );
        assert_eq!(normalize("--cap-drop", "all").unwrap(), "ALL");
        let e = normalize("--cap-add", "FLY").unwrap_err().to_string();
        assert!(e.contains("--cap-add") && e.contains("FLY"), "{e}");
    }

    #[test]
    fn default_add_drop_and_all() {
        assert_eq!(resolve(&[], &[], false).len(), DEFAULT.len());
        let r = resolve(&s(&["CAP_NET_ADMIN"]), &s(&["CAP_CHOWN"]), false);
        assert!(r.contains(&"CAP_NET_ADMIN".into()) && !r.contains(&"CAP_CHOWN".into()));
        assert_eq!(resolve(&[], &s(&["ALL"]), false), Vec::<String>::new());
        assert_eq!(
            resolve(&s(&["CAP_KILL"]), &s(&["ALL"]), false),
            s(&["CAP_KILL"])
        );
        let all_but = resolve(&s(&["ALL"]), &s(&["CAP_SYS_ADMIN"]), false);
        assert_eq!(all_but.len(), ALL.len() - 1);
        assert_eq!(resolve(&[], &s(&["CAP_CHOWN"]), true).len(), ALL.len());
    }
}
