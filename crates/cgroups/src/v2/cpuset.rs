//! v2 cpuset controller: pinning to CPUs and memory nodes.

use oci_spec::runtime::LinuxResources;

use super::controllers::Cgroup;
use crate::error::Result;
use crate::plan::WritePlan;

/// Plans `linux.resources.cpu.cpus` and `.mems`. Unlike v1, an empty v2 cpuset uses its
/// parent's effective set, so nothing needs copying at creation.
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    let cpus = cpu.cpus().as_deref().filter(|v| !v.is_empty());
    let mems = cpu.mems().as_deref().filter(|v| !v.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let dir = cgroup.require("cpuset", "linux.resources.cpu.cpus/mems")?;
    if let Some(cpus) = cpus {
        plan.set(dir, "cpuset.cpus", cpus);
    }
    if let Some(mems) = mems {
        plan.set(dir, "cpuset.mems", mems);
    }
    Ok(())
}
