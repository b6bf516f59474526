//! cgroup v1 and v2 managers for vessel containers.
//!
//! A runtime parses the OCI `linux.cgroupsPath` into a [`CgroupPath`], builds a [`Manager`]
//! for the host (which detects v1 or v2 at the cgroup root), and drives the container's
//! cgroup through the [`CgroupManager`] trait: create, add tasks, apply `linux.resources`,
//! freeze and thaw, read pids and stats, destroy. docs/cgroups.md maps every OCI resource to
//! the files written on each version.

mod error;
#[cfg(test)]
mod fake_tree;
mod fs;
mod hugepages;
mod keyed;
mod manager;
mod mode;
mod path;
mod plan;
mod resource_values;
mod stats;
mod tree;
mod v1;
mod v2;
mod wait;

pub use error::{CgroupError, Result};
pub use manager::{CgroupManager, Manager};
pub use mode::{detect_mode, CgroupMode};
pub use oci_spec::runtime::LinuxResources;
pub use path::CgroupPath;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};
