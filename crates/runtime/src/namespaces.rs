//! Linux namespaces as config.json names them.

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::path::PathBuf;

/// The clone flag of a namespace type (`None` for types Linux lacks here).
pub fn clone_flag(typ: LinuxNamespaceType) -> Option<CloneFlags> {
    Some(match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => return Some(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    })
}

/// The name of the namespace's link under /proc/PID/ns.
pub fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace plan of a container: which to create, which to join.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces to create (one unshare).
    pub new: CloneFlags,
    /// Namespaces to join, in the order they must be entered.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl NamespacePlan {
    /// Build the plan from `linux.namespaces`.
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Self {
        let mut plan = NamespacePlan {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        for ns in namespaces {
            let Some(flag) = clone_flag(ns.typ()) else {
                continue;
            };
            match ns.path() {
                Some(path) => plan.join.push((ns.typ(), path.clone())),
                None => plan.new |= flag,
            }
        }
        // Join the user namespace first: the others are owned by it and
        // joining them needs the capabilities it grants. Mount last, because
        // after it the other paths may not be visible any more.
        plan.join.sort_by_key(|(t, _)| match t {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        plan
    }

    /// Whether the container gets a pid namespace of its own or joins one, so
    /// that the init must be forked once more to land in it.
    pub fn changes_pid_ns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWPID)
            || self.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Pid)
    }

    /// Whether a given namespace type is private to the container (new or joined).
    pub fn has(&self, typ: LinuxNamespaceType) -> bool {
        clone_flag(typ).is_some_and(|f| self.new.contains(f))
            || self.join.iter().any(|(t, _)| *t == typ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_joined_first_mount_last() {
        let v: Vec<LinuxNamespace> = serde_json::from_value(serde_json::json!([
            {"type": "mount", "path": "/proc/1/ns/mnt"},
            {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "user", "path": "/proc/1/ns/user"},
            {"type": "pid"}
        ]))
        .unwrap();
        let plan = NamespacePlan::from_spec(&v);
        let order: Vec<_> = plan.join.iter().map(|(t, _)| proc_name(*t)).collect();
        assert_eq!(order, ["user", "net", "mnt"]);
        assert_eq!(plan.new, CloneFlags::CLONE_NEWPID);
        assert!(plan.changes_pid_ns());
    }
}
