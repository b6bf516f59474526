//! Which v2 controllers a cgroup has, and turning them on from the root down.
//!
//! In cgroup v2 a controller is available in a cgroup only when its parent lists it in
//! `cgroup.subtree_control`, and a parent can only enable what its own `cgroup.controllers`
//! offers. So the controllers are enabled level by level from the root to the container's
//! parent.

use std::collections::BTreeSet;
use std::fs as std_fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::fs::{self, WriteMode};

/// The controllers vessel manages, in the order they are enabled.
const MANAGED: [&str; 8] = [
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

/// Reads a space-separated controller list; a file the kernel does not provide is empty.
fn read_list(path: &Path) -> Result<BTreeSet<String>> {
    Ok(fs::read_optional(path)?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Creates the levels of `relative` under `root`, enabling in each parent the managed
/// controllers it offers.
///
/// A controller the kernel refuses to enable (EBUSY when the parent itself holds processes, as
/// in some nested setups) is skipped rather than failing the creation: the container then
/// lacks it, and `apply` reports the missing controller if, and only if, a resource needs it.
pub(super) fn create_with_controllers(root: &Path, relative: &Path) -> Result<()> {
    let mut parent = root.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        enable_managed(&parent)?;
        let child = parent.join(name);
        match std_fs::create_dir(&child) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::CreateDir {
                    path: child,
                    source,
                })
            }
        }
        parent = child;
    }
    Ok(())
}

fn enable_managed(dir: &Path) -> Result<()> {
    let offered = read_list(&dir.join("cgroup.controllers"))?;
    let enabled = read_list(&dir.join("cgroup.subtree_control"))?;
    for controller in MANAGED {
        if offered.contains(controller) && !enabled.contains(controller) {
            // One controller per write, so one refusal does not block the others.
            let _refused_ones_are_reported_by_apply = fs::write_value(
                &dir.join("cgroup.subtree_control"),
                &format!("+{controller}"),
                WriteMode::Append,
            );
        }
    }
    Ok(())
}

/// The container's cgroup directory and the controllers available in it.
#[derive(Debug)]
pub(super) struct Cgroup {
    dir: PathBuf,
    available: BTreeSet<String>,
}

impl Cgroup {
    /// Reads the cgroup's controllers. Unlike a parent's list during creation, this file must
    /// exist: without it the cgroup was never created (or is already gone), and saying so is
    /// clearer than reporting every controller missing.
    pub(super) fn open(dir: &Path) -> Result<Self> {
        let available = fs::read_string(&dir.join("cgroup.controllers"))?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            available,
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn has(&self, controller: &str) -> bool {
        self.available.contains(controller)
    }

    /// The directory, when `controller`, which `resource` needs, is available.
    pub(super) fn require(&self, controller: &str, resource: &str) -> Result<&Path> {
        if self.has(controller) {
            Ok(&self.dir)
        } else {
            Err(CgroupError::ControllerUnavailable {
                controller: controller.to_string(),
                resource: resource.to_string(),
            })
        }
    }
}
