//! v2 pids controller: the task limit.

use oci_spec::runtime::LinuxResources;

use super::controllers::Cgroup;
use crate::error::Result;
use crate::fs;
use crate::plan::WritePlan;
use crate::resource_values::pids_max;
use crate::stats::Stats;

/// Plans `linux.resources.pids`.
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(pids) = resources.pids() else {
        return Ok(());
    };
    let dir = cgroup.require("pids", "linux.resources.pids")?;
    plan.set(dir, "pids.max", pids_max(pids.limit()));
    Ok(())
}

/// Fills `stats.pids` (the limit reads 0 when unlimited, as runc reports it).
pub(super) fn stats(cgroup: &Cgroup, stats: &mut Stats) -> Result<()> {
    if !cgroup.has("pids") {
        return Ok(());
    }
    let dir = cgroup.dir();
    stats.pids.current = fs::read_u64_optional(&dir.join("pids.current"))?.unwrap_or(0);
    stats.pids.limit = match fs::read_u64_optional(&dir.join("pids.max"))? {
        Some(u64::MAX) | None => 0,
        Some(limit) => limit,
    };
    Ok(())
}
