//! v1 net_cls and net_prio controllers: tagging and prioritising the container's traffic.

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::plan::WritePlan;
use crate::resource_values::checked_word;

/// Plans `linux.resources.network`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(network) = resources.network() else {
        return Ok(());
    };
    let priorities = network.priorities().as_deref().unwrap_or_default();
    let mut lines = Vec::new();
    for priority in priorities {
        let name = checked_word("linux.resources.network.priorities name", priority.name())?;
        lines.push(format!("{name} {}", priority.priority()));
    }
    if let Some(class_id) = network.class_id() {
        let dir = dirs.require("net_cls", "linux.resources.network.classID")?;
        plan.set(dir, "net_cls.classid", class_id);
    }
    if !lines.is_empty() {
        let dir = dirs.require("net_prio", "linux.resources.network.priorities")?;
        for line in lines {
            // One interface per write: the kernel parses a single "name priority" pair.
            plan.command(dir, "net_prio.ifpriomap", line);
        }
    }
    Ok(())
}
