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
    crate::resource_values::plan_cpuset(
        resources,
        || cgroup.require("cpuset", "linux.resources.cpu.cpus/mems"),
        plan,
    )
}
