//! v1 cpuset controller: pinning to CPUs and memory nodes.

use std::path::{Component, Path};

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::fs::{self, WriteMode};
use crate::plan::WritePlan;

/// The files a v1 cpuset starts with empty, and which must be filled before it can hold tasks
/// (attaching to an empty cpuset fails with ENOSPC).
const INHERITED_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// Plans `linux.resources.cpu.cpus` and `.mems`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    crate::resource_values::plan_cpuset(
        resources,
        || dirs.require("cpuset", "linux.resources.cpu.cpus/mems"),
        plan,
    )
}

/// Gives every cgroup from just below `mount` down to `mount/relative` the cpus and mems of
/// its parent, where it has none yet.
pub(super) fn inherit_from_parents(mount: &Path, relative: &Path) -> Result<()> {
    let mut parent = mount.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let child = parent.join(name);
        for file in INHERITED_FILES {
            let child_file = child.join(file);
            if fs::read_string(&child_file)?.trim().is_empty() {
                let inherited = fs::read_string(&parent.join(file))?;
                fs::write_value(&child_file, inherited.trim(), WriteMode::Replace)?;
            }
        }
        parent = child;
    }
    Ok(())
}
