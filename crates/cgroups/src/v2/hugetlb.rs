//! v2 hugetlb controller: huge page limits per page size.

use oci_spec::runtime::LinuxResources;

use super::controllers::Cgroup;
use crate::error::Result;
use crate::fs;
use crate::hugepages::{checked_page_size, page_sizes, require_page_size};
use crate::keyed::flat_keyed;
use crate::plan::WritePlan;
use crate::stats::{HugetlbStats, Stats};

/// Plans `linux.resources.hugepageLimits`: `hugetlb.<size>.max`, and the reservation limit
/// `hugetlb.<size>.rsvd.max` too where the kernel has one (5.7+). A negative limit is `max`.
pub(super) fn plan(
    cgroup: &Cgroup,
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
    let dir = cgroup.require("hugetlb", "linux.resources.hugepageLimits")?;
    for limit in limits {
        let size = limit.page_size();
        let value = if limit.limit() < 0 {
            "max".to_string()
        } else {
            limit.limit().to_string()
        };
        let max_file = format!("hugetlb.{size}.max");
        require_page_size(dir, size, &max_file)?;
        plan.set(dir, &max_file, &value);
        let reservation_file = format!("hugetlb.{size}.rsvd.max");
        if fs::exists(&dir.join(&reservation_file)) {
            plan.set(dir, &reservation_file, &value);
        }
    }
    Ok(())
}

/// Fills `stats.hugetlb`, one entry per page size the kernel offers. v2 keeps no peak, so
/// `max` stays 0; `failcnt` is the `max` count of `hugetlb.<size>.events`.
pub(super) fn stats(cgroup: &Cgroup, stats: &mut Stats) -> Result<()> {
    if !cgroup.has("hugetlb") {
        return Ok(());
    }
    let dir = cgroup.dir();
    for size in page_sizes(dir, ".current")? {
        let usage = fs::read_u64_optional(&dir.join(format!("hugetlb.{size}.current")))?;
        let events = fs::read_optional(&dir.join(format!("hugetlb.{size}.events")))?;
        let entry = HugetlbStats {
            usage: usage.unwrap_or(0),
            max: 0,
            failcnt: events
                .map(|content| flat_keyed(&content).get("max").copied().unwrap_or(0))
                .unwrap_or(0),
        };
        stats.hugetlb.insert(size, entry);
    }
    Ok(())
}
