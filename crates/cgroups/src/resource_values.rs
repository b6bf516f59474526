//! Checks and formats of OCI resource values that v1 and v2 write the same way.
//!
//! Several values end up in command lines (an RDMA device name starts a line of `rdma.max`),
//! so each is checked here before it can reach one.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxRdma, LinuxResources};

use crate::error::{CgroupError, Result};

pub(crate) fn invalid(resource: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        resource: resource.into(),
        reason: reason.into(),
    }
}

/// The `pids.max` value for an OCI pids limit: zero or negative means no limit, as in runc.
pub(crate) fn pids_max(limit: i64) -> String {
    if limit <= 0 {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

/// `major:minor` of a block device rule; the numbers must not be negative.
pub(crate) fn device_key(resource: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(invalid(
            resource,
            format!("device {major}:{minor} has a negative number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

/// A name that starts a command line (an RDMA device, a network interface): one word.
pub(crate) fn checked_word<'a>(resource: &str, word: &'a str) -> Result<&'a str> {
    if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            resource,
            format!("{word:?} must be one word without spaces or control characters"),
        ));
    }
    Ok(word)
}

/// The `rdma.max` lines for `linux.resources.rdma`, sorted by device for a stable order.
pub(crate) fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Result<Vec<String>> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    let mut lines = Vec::new();
    for (device, limits) in devices {
        let device = checked_word("linux.resources.rdma device", device)?;
        let mut line = device.to_string();
        if let Some(handles) = limits.hca_handles() {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limits.hca_objects() {
            line.push_str(&format!(" hca_object={objects}"));
        }
        if line.len() > device.len() {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Whether `linux.resources.network` asks for anything.
pub(crate) fn network_is_set(resources: &LinuxResources) -> bool {
    resources.network().as_ref().is_some_and(|network| {
        network.class_id().is_some()
            || network
                .priorities()
                .as_ref()
                .is_some_and(|priorities| !priorities.is_empty())
    })
}

/// `linux.resources.cpu.cpus` and `.mems` when set (v1 and v2 write them to the same files,
/// `cpuset.cpus` and `cpuset.mems`, of the cgroup that `dir` names).
pub(crate) fn plan_cpuset<'a>(
    resources: &LinuxResources,
    dir: impl FnOnce() -> Result<&'a std::path::Path>,
    plan: &mut crate::plan::WritePlan,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    let cpus = cpu.cpus().as_deref().filter(|v| !v.is_empty());
    let mems = cpu.mems().as_deref().filter(|v| !v.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let dir = dir()?;
    if let Some(cpus) = cpus {
        plan.set(dir, "cpuset.cpus", cpus);
    }
    if let Some(mems) = mems {
        plan.set(dir, "cpuset.mems", mems);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxRdmaBuilder;

    #[test]
    fn device_keys_reject_negative_numbers() {
        assert_eq!(device_key("r", 8, 0).unwrap(), "8:0");
        assert!(device_key("r", -1, 0).is_err());
    }

    #[test]
    fn rdma_lines_are_sorted_and_skip_empty_entries() {
        let mut rdma = HashMap::new();
        rdma.insert(
            "mlx5_1".to_string(),
            LinuxRdmaBuilder::default()
                .hca_objects(7u32)
                .build()
                .unwrap(),
        );
        rdma.insert(
            "mlx5_0".to_string(),
            LinuxRdmaBuilder::default()
                .hca_handles(2u32)
                .hca_objects(3u32)
                .build()
                .unwrap(),
        );
        rdma.insert("empty".to_string(), LinuxRdma::default());
        assert_eq!(
            rdma_lines(&rdma).unwrap(),
            vec!["mlx5_0 hca_handle=2 hca_object=3", "mlx5_1 hca_object=7"]
        );
        rdma.insert("bad name".to_string(), LinuxRdma::default());
        assert!(rdma_lines(&rdma).is_err());
    }
}
