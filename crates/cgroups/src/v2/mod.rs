//! cgroup v2: one unified hierarchy at the cgroup root, with controllers enabled per subtree.
//!
//! Device rules (`linux.resources.devices`) have no interface file on v2: the kernel filters
//! devices with an eBPF program attached to the cgroup, which `devices_bpf` compiles from
//! the rules, loads and attaches.

mod block_io;
mod bpf_insn;
mod bpf_sys;
mod controllers;
mod cpu;
mod cpuset;
mod devices_bpf;
mod freezer;
mod hugetlb;
mod memory;
mod pids;
mod rdma;
#[cfg(test)]
mod tests;
mod unified;

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs::{self, WriteMode};
use crate::manager::CgroupManager;
use crate::mode::CgroupMode;
use crate::path::CgroupPath;
use crate::plan::WritePlan;
use crate::resource_values::network_is_set;
use crate::stats::Stats;
use crate::tree;
use controllers::Cgroup;

/// How long `freeze` and `thaw` wait for the kernel.
const FREEZER_TIMEOUT: Duration = Duration::from_secs(5);

/// The v2 implementation of [`CgroupManager`].
#[derive(Debug)]
pub(crate) struct V2Manager {
    root: PathBuf,
    path: CgroupPath,
    dir: PathBuf,
    freezer_timeout: Duration,
}

impl V2Manager {
    pub(crate) fn new(root: &Path, path: &CgroupPath) -> Self {
        Self {
            root: root.to_path_buf(),
            path: path.clone(),
            dir: path.in_hierarchy(root),
            freezer_timeout: FREEZER_TIMEOUT,
        }
    }

    fn cgroup(&self) -> Result<Cgroup> {
        Cgroup::open(&self.dir)
    }

    /// Checks and orders every write `resources` needs; nothing is written yet.
    fn plan(&self, resources: &LinuxResources) -> Result<WritePlan> {
        if network_is_set(resources) {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.network".to_string(),
                reason: "net_cls and net_prio exist only in cgroup v1".to_string(),
            });
        }
        let cgroup = self.cgroup()?;
        let mut plan = WritePlan::default();
        memory::plan(&cgroup, resources, &mut plan)?;
        cpu::plan(&cgroup, resources, &mut plan)?;
        cpuset::plan(&cgroup, resources, &mut plan)?;
        pids::plan(&cgroup, resources, &mut plan)?;
        block_io::plan(&cgroup, resources, &mut plan)?;
        hugetlb::plan(&cgroup, resources, &mut plan)?;
        rdma::plan(&cgroup, resources, &mut plan)?;
        unified::plan(&cgroup, resources, &mut plan)?;
        Ok(plan)
    }

    #[cfg(test)]
    fn with_freezer_timeout(mut self, timeout: Duration) -> Self {
        self.freezer_timeout = timeout;
        self
    }
}

impl CgroupManager for V2Manager {
    fn create(&self) -> Result<()> {
        controllers::create_with_controllers(&self.root, self.path.relative())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        fs::write_value(
            &self.dir.join("cgroup.procs"),
            &pid.to_string(),
            WriteMode::Append,
        )
    }

    /// Applies the resources. The device filter is compiled with the plan and loaded (so
    /// the verifier checks it) before anything is written; it is attached after the writes.
    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let plan = self.plan(resources)?;
        let filter = devices_bpf::plan(resources)?
            .map(|filter| filter.load(&self.dir))
            .transpose()?;
        plan.execute()?;
        if let Some(filter) = filter {
            filter.attach(&self.dir)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        freezer::freeze(&self.dir, self.freezer_timeout)
    }

    fn thaw(&self) -> Result<()> {
        freezer::thaw(&self.dir, self.freezer_timeout)
    }

    fn is_frozen(&self) -> Result<bool> {
        freezer::is_frozen(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        tree::pids_recursive(&self.dir)
    }

    fn stats(&self) -> Result<Stats> {
        let cgroup = self.cgroup()?;
        let mut stats = Stats::default();
        cpu::stats(&cgroup, &mut stats)?;
        memory::stats(&cgroup, &mut stats)?;
        pids::stats(&cgroup, &mut stats)?;
        block_io::stats(&cgroup, &mut stats)?;
        hugetlb::stats(&cgroup, &mut stats)?;
        Ok(stats)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        memory::oom_kill_count(&self.cgroup()?)
    }

    fn destroy(&self) -> Result<()> {
        tree::remove_recursive(&self.dir)
    }

    fn mode(&self) -> CgroupMode {
        CgroupMode::V2
    }
}
