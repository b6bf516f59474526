//! cgroup v1: one hierarchy per controller (or group of co-mounted controllers) under the
//! cgroup root, and the container's cgroup at the same path in each.

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hierarchy;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod rdma;
#[cfg(test)]
mod tests;

use std::fs as std_fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs::{self, WriteMode};
use crate::manager::CgroupManager;
use crate::mode::CgroupMode;
use crate::path::CgroupPath;
use crate::plan::WritePlan;
use crate::stats::Stats;
use crate::tree;
use hierarchy::{ControllerDirs, Hierarchies};

/// How long `freeze` and `thaw` wait for the kernel.
const FREEZER_TIMEOUT: Duration = Duration::from_secs(5);

/// Hierarchies `pids` reads the process list from, best first: each lists exactly the
/// container's processes, and these are the ones nearly every host mounts.
const PROCESS_LIST_CONTROLLERS: [&str; 3] = ["pids", "freezer", "memory"];

/// The v1 implementation of [`CgroupManager`].
#[derive(Debug)]
pub(crate) struct V1Manager {
    root: PathBuf,
    path: CgroupPath,
    freezer_timeout: Duration,
}

impl V1Manager {
    pub(crate) fn new(root: &Path, path: &CgroupPath) -> Self {
        Self {
            root: root.to_path_buf(),
            path: path.clone(),
            freezer_timeout: FREEZER_TIMEOUT,
        }
    }

    /// Hierarchies are listed on each call, so a manager built before a controller was
    /// mounted (or in another process) sees the tree as it is now.
    fn hierarchies(&self) -> Result<Hierarchies> {
        Hierarchies::discover(&self.root)
    }

    fn dirs(&self) -> Result<ControllerDirs> {
        Ok(self.hierarchies()?.cgroup_dirs(&self.path))
    }

    /// Checks and orders every write `resources` needs; nothing is written yet.
    fn plan(&self, resources: &LinuxResources) -> Result<WritePlan> {
        if resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.unified".to_string(),
                reason: "it holds cgroup v2 files, and this host uses cgroup v1".to_string(),
            });
        }
        let dirs = self.dirs()?;
        let mut plan = WritePlan::default();
        devices::plan(&dirs, resources, &mut plan)?;
        memory::plan(&dirs, resources, &mut plan)?;
        cpu::plan(&dirs, resources, &mut plan)?;
        cpuset::plan(&dirs, resources, &mut plan)?;
        pids::plan(&dirs, resources, &mut plan)?;
        blkio::plan(&dirs, resources, &mut plan)?;
        hugetlb::plan(&dirs, resources, &mut plan)?;
        network::plan(&dirs, resources, &mut plan)?;
        rdma::plan(&dirs, resources, &mut plan)?;
        Ok(plan)
    }

    #[cfg(test)]
    fn with_freezer_timeout(mut self, timeout: Duration) -> Self {
        self.freezer_timeout = timeout;
        self
    }
}

impl CgroupManager for V1Manager {
    fn create(&self) -> Result<()> {
        for hierarchy in self.hierarchies()?.iter() {
            let dir = self.path.in_hierarchy(&hierarchy.mount);
            std_fs::create_dir_all(&dir).map_err(|source| CgroupError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            if hierarchy.controllers.contains("cpuset") {
                cpuset::inherit_from_parents(&hierarchy.mount, self.path.relative())?;
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for hierarchy in self.hierarchies()?.iter() {
            let procs = self
                .path
                .in_hierarchy(&hierarchy.mount)
                .join("cgroup.procs");
            fs::write_value(&procs, &pid.to_string(), WriteMode::Append)?;
        }
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.plan(resources)?.execute()
    }

    fn freeze(&self) -> Result<()> {
        freezer::freeze(&self.dirs()?, self.freezer_timeout)
    }

    fn thaw(&self) -> Result<()> {
        freezer::thaw(&self.dirs()?, self.freezer_timeout)
    }

    fn is_frozen(&self) -> Result<bool> {
        freezer::is_frozen(&self.dirs()?)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let hierarchies = self.hierarchies()?;
        let dirs = hierarchies.cgroup_dirs(&self.path);
        let dir = PROCESS_LIST_CONTROLLERS
            .iter()
            .find_map(|controller| dirs.get(controller).map(Path::to_path_buf))
            .or_else(|| {
                hierarchies
                    .iter()
                    .next()
                    .map(|h| self.path.in_hierarchy(&h.mount))
            })
            .ok_or_else(|| CgroupError::ControllerUnavailable {
                controller: PROCESS_LIST_CONTROLLERS.join(" or "),
                resource: "listing the container's processes".to_string(),
            })?;
        tree::pids_recursive(&dir)
    }

    fn stats(&self) -> Result<Stats> {
        let dirs = self.dirs()?;
        let mut stats = Stats::default();
        cpu::stats(&dirs, &mut stats)?;
        memory::stats(&dirs, &mut stats)?;
        pids::stats(&dirs, &mut stats)?;
        blkio::stats(&dirs, &mut stats)?;
        hugetlb::stats(&dirs, &mut stats)?;
        Ok(stats)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        memory::oom_kill_count(&self.dirs()?)
    }

    fn destroy(&self) -> Result<()> {
        // Try every hierarchy even when one fails, so one busy controller does not leave the
        // others behind; report the first failure.
        let mut first_error = None;
        for hierarchy in self.hierarchies()?.iter() {
            let dir = self.path.in_hierarchy(&hierarchy.mount);
            if let Err(error) = tree::remove_recursive(&dir) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn mode(&self) -> CgroupMode {
        CgroupMode::V1
    }
}
