//! The cgroup manager seam: one trait, a v1 and a v2 implementation, and [`Manager`], which
//! picks between them for the host it runs on.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::mode::{detect_mode, CgroupMode};
use crate::path::CgroupPath;
use crate::stats::Stats;
use crate::v1::V1Manager;
use crate::v2::V2Manager;

/// What a runtime does with a container's cgroup.
pub trait CgroupManager {
    /// Creates the cgroup (and missing parents) in every hierarchy.
    ///
    /// v1: in every mounted hierarchy under the root, named ones such as `name=systemd` and a
    /// hybrid host's `unified` tree included; new cpuset cgroups get `cpuset.cpus` and
    /// `cpuset.mems` copied from their parent, since an empty cpuset cannot hold tasks.
    /// v2: from the root down, each parent gets the controllers vessel manages
    /// (cpu, cpuset, io, memory, pids, hugetlb, rdma, misc) that it offers enabled in its
    /// `cgroup.subtree_control`, so accounting starts before the workload does.
    fn create(&self) -> Result<()>;

    /// Moves the process `pid` (all its threads) into the cgroup, in every hierarchy.
    fn add_task(&self, pid: i32) -> Result<()>;

    /// Applies OCI resource limits. Everything is checked first (values, controllers); a
    /// resource whose controller is missing is an error naming the controller, unless that
    /// resource is not set. See docs/cgroups.md for the mapping of each field.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;

    /// Freezes every task of the cgroup and returns once the kernel reports it frozen.
    fn freeze(&self) -> Result<()>;

    /// Thaws the cgroup and returns once the kernel reports it thawed.
    fn thaw(&self) -> Result<()>;

    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> Result<bool>;

    /// Every process in the cgroup, child cgroups included.
    fn pids(&self) -> Result<Vec<i32>>;

    /// Resource usage; counters the host does not provide are left at zero.
    fn stats(&self) -> Result<Stats>;

    /// How many times the kernel's OOM killer killed a task of the cgroup.
    fn oom_kill_count(&self) -> Result<u64>;

    /// Removes the cgroup, child cgroups first, in every hierarchy. A cgroup already gone is
    /// fine; one still busy is retried briefly. Parents are left alone: they may be shared
    /// with other containers, and the hierarchy roots are never touched.
    fn destroy(&self) -> Result<()>;

    /// The cgroup version this manager drives.
    fn mode(&self) -> CgroupMode;
}

/// The manager for the host's cgroup version.
#[derive(Debug)]
pub struct Manager {
    path: CgroupPath,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    V1(V1Manager),
    V2(V2Manager),
}

impl Manager {
    /// A manager for the cgroup `path` under `root` (normally `/sys/fs/cgroup`), for the
    /// cgroup version detected at `root`.
    pub fn new(root: &Path, path: &CgroupPath) -> Result<Self> {
        Ok(Self::with_mode(root, path, detect_mode(root)?))
    }

    /// A manager for an explicit version, without looking at `root` (tests over a fake tree).
    pub fn with_mode(root: &Path, path: &CgroupPath, mode: CgroupMode) -> Self {
        let backend = match mode {
            CgroupMode::V1 => Backend::V1(V1Manager::new(root, path)),
            CgroupMode::V2 => Backend::V2(V2Manager::new(root, path)),
        };
        Self {
            path: path.clone(),
            backend,
        }
    }

    /// The container's cgroup path.
    pub fn path(&self) -> &CgroupPath {
        &self.path
    }

    fn backend(&self) -> &dyn CgroupManager {
        match &self.backend {
            Backend::V1(manager) => manager,
            Backend::V2(manager) => manager,
        }
    }
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<()> {
        self.backend().create()
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        self.backend().add_task(pid)
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.backend().apply(resources)
    }

    fn freeze(&self) -> Result<()> {
        self.backend().freeze()
    }

    fn thaw(&self) -> Result<()> {
        self.backend().thaw()
    }

    fn is_frozen(&self) -> Result<bool> {
        self.backend().is_frozen()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.backend().pids()
    }

    fn stats(&self) -> Result<Stats> {
        self.backend().stats()
    }

    fn oom_kill_count(&self) -> Result<u64> {
        self.backend().oom_kill_count()
    }

    fn destroy(&self) -> Result<()> {
        self.backend().destroy()
    }

    fn mode(&self) -> CgroupMode {
        self.backend().mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CgroupError;
    use crate::fake_tree::{resources, FakeTree};

    #[test]
    fn the_mode_picks_the_implementation() {
        let tree = FakeTree::new();
        tree.file("vessel/c1/cgroup.controllers", "pids\n")
            .files("vessel/c1", &["pids.max"]);
        let path = CgroupPath::parse(None, "c1", false).unwrap();
        let limit = resources(serde_json::json!({"pids": {"limit": 5}}));

        let v2 = Manager::with_mode(tree.root(), &path, CgroupMode::V2);
        assert_eq!(v2.mode(), CgroupMode::V2);
        assert_eq!(v2.path(), &path);
        v2.apply(&limit).unwrap();
        assert_eq!(tree.read("vessel/c1/pids.max"), "5");

        // Read as v1, the same tree has no pids hierarchy.
        let v1 = Manager::with_mode(tree.root(), &path, CgroupMode::V1);
        assert_eq!(v1.mode(), CgroupMode::V1);
        assert!(matches!(
            v1.apply(&limit),
            Err(CgroupError::ControllerUnavailable { .. })
        ));

        // A plain directory is not cgroup2.
        let detected = Manager::new(tree.root(), &path).unwrap();
        assert_eq!(detected.mode(), CgroupMode::V1);
    }

    #[test]
    fn a_v2_cgroup_that_was_never_created_is_named() {
        let tree = FakeTree::new();
        let path = CgroupPath::parse(None, "c1", false).unwrap();
        let manager = Manager::with_mode(tree.root(), &path, CgroupMode::V2);
        let error = manager
            .apply(&resources(serde_json::json!({"pids": {"limit": 5}})))
            .unwrap_err();
        assert!(
            error.to_string().contains("vessel/c1/cgroup.controllers"),
            "{error}"
        );
    }
}
