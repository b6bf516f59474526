//! v1 rdma controller: limits on RDMA handles and objects per device.

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::plan::WritePlan;
use crate::resource_values::rdma_lines;

/// Plans `linux.resources.rdma`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(rdma) = resources.rdma() else {
        return Ok(());
    };
    let lines = rdma_lines(rdma)?;
    if lines.is_empty() {
        return Ok(());
    }
    let dir = dirs.require("rdma", "linux.resources.rdma")?;
    for line in lines {
        plan.command(dir, "rdma.max", line);
    }
    Ok(())
}
