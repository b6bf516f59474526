//! v1 pids controller: the task limit.

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::fs;
use crate::plan::WritePlan;
use crate::resource_values::pids_max;
use crate::stats::Stats;

/// Plans `linux.resources.pids`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(pids) = resources.pids() else {
        return Ok(());
    };
    let dir = dirs.require("pids", "linux.resources.pids")?;
    plan.set(dir, "pids.max", pids_max(pids.limit()));
    Ok(())
}

/// Fills `stats.pids` (the limit reads 0 when unlimited, as runc reports it).
pub(super) fn stats(dirs: &ControllerDirs, stats: &mut Stats) -> Result<()> {
    let Some(dir) = dirs.get("pids") else {
        return Ok(());
    };
    stats.pids.current = fs::read_u64_optional(&dir.join("pids.current"))?.unwrap_or(0);
    stats.pids.limit = match fs::read_u64_optional(&dir.join("pids.max"))? {
        Some(u64::MAX) | None => 0,
        Some(limit) => limit,
    };
    Ok(())
}
