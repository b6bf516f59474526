//! v1 hugetlb controller: huge page limits per page size.

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::fs;
use crate::hugepages::{checked_page_size, page_sizes, require_page_size};
use crate::plan::WritePlan;
use crate::stats::{HugetlbStats, Stats};

/// Plans `linux.resources.hugepageLimits`: the usage limit, and the reservation limit too
/// where the kernel has one (5.7+), as the spec asks for reservations when supported.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let limits = resources.hugepage_limits().as_deref().unwrap_or_default();
    if limits.is_empty() {
        return Ok(());
    }
    for limit in limits {
        checked_page_size(limit.page_size())?;
    }
    let dir = dirs.require("hugetlb", "linux.resources.hugepageLimits")?;
    for limit in limits {
        let size = limit.page_size();
        let usage_file = format!("hugetlb.{size}.limit_in_bytes");
        require_page_size(dir, size, &usage_file)?;
        plan.set(dir, &usage_file, limit.limit());
        let reservation_file = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if fs::exists(&dir.join(&reservation_file)) {
            plan.set(dir, &reservation_file, limit.limit());
        }
    }
    Ok(())
}

/// Fills `stats.hugetlb`, one entry per page size the kernel offers.
pub(super) fn stats(dirs: &ControllerDirs, stats: &mut Stats) -> Result<()> {
    let Some(dir) = dirs.get("hugetlb") else {
        return Ok(());
    };
    for size in page_sizes(dir, ".usage_in_bytes")? {
        let read =
            |suffix: &str| fs::read_u64_optional(&dir.join(format!("hugetlb.{size}.{suffix}")));
        let entry = HugetlbStats {
            usage: read("usage_in_bytes")?.unwrap_or(0),
            max: read("max_usage_in_bytes")?.unwrap_or(0),
            failcnt: read("failcnt")?.unwrap_or(0),
        };
        stats.hugetlb.insert(size, entry);
    }
    Ok(())
}
