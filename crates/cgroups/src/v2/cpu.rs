//! v2 cpu controller: weight, bandwidth (`cpu.max`), usage and throttling.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::controllers::Cgroup;
use crate::error::{CgroupError, Result};
use crate::fs;
use crate::keyed::flat_keyed;
use crate::plan::WritePlan;
use crate::stats::Stats;

/// v1 shares range (the kernel clamps to it), mapped onto v2's weight range 1..=10000.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// `cpu.weight` for v1 `cpu.shares`: the linear map of [2, 262144] onto [1, 10000] that runc,
/// crun and systemd share, so a container gets the same weight from every runtime.
pub(crate) fn weight_from_shares(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// The quota half of `cpu.max`: zero or negative is no limit.
fn quota_value(quota: i64) -> String {
    if quota <= 0 {
        "max".to_string()
    } else {
        quota.to_string()
    }
}

/// Plans the cpu-controller part of `linux.resources.cpu` (cpus and mems are cpuset's).
/// Zero means "not set" for shares, quota and period, as in runc.
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    let realtime = cpu.realtime_runtime().filter(|&v| v != 0).is_some()
        || cpu.realtime_period().filter(|&v| v != 0).is_some();
    if realtime {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.cpu.realtimeRuntime/realtimePeriod".to_string(),
            reason: "cgroup v2 has no realtime bandwidth control".to_string(),
        });
    }
    let shares = cpu.shares().filter(|&v| v != 0);
    let quota = cpu.quota().filter(|&v| v != 0);
    let period = cpu.period().filter(|&v| v != 0);
    let burst = cpu.burst();
    let idle = cpu.idle();
    if shares.is_none() && quota.is_none() && period.is_none() && burst.is_none() && idle.is_none()
    {
        return Ok(());
    }
    let dir = cgroup.require("cpu", "linux.resources.cpu")?;
    if let Some(shares) = shares {
        plan.set(dir, "cpu.weight", weight_from_shares(shares));
    }
    let cpu_max = match (quota, period) {
        (Some(quota), Some(period)) => Some(format!("{} {period}", quota_value(quota))),
        // The kernel keeps the period when only the quota is written.
        (Some(quota), None) => Some(quota_value(quota)),
        // A new period alone must not drop the quota in force: write it back with the period.
        (None, Some(period)) => Some(format!("{} {period}", current_quota(dir)?)),
        (None, None) => None,
    };
    if let Some(cpu_max) = cpu_max {
        plan.set(dir, "cpu.max", cpu_max);
    }
    if let Some(burst) = burst {
        plan.set(dir, "cpu.max.burst", burst);
    }
    if let Some(idle) = idle {
        plan.set(dir, "cpu.idle", idle);
    }
    Ok(())
}

fn current_quota(dir: &Path) -> Result<String> {
    let path = dir.join("cpu.max");
    let content = fs::read_string(&path)?;
    content
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| fs::parse_error(&path, &content))
}

/// Fills `stats.cpu` from `cpu.stat` (µs there, ns here). `cpu.stat` exists even without the
/// cpu controller (usage only), so it is read whenever present.
pub(super) fn stats(cgroup: &Cgroup, stats: &mut Stats) -> Result<()> {
    let Some(content) = fs::read_optional(&cgroup.dir().join("cpu.stat"))? else {
        return Ok(());
    };
    let values = flat_keyed(&content);
    let get = |key: &str| values.get(key).copied().unwrap_or(0);
    let nanos = |key: &str| get(key).saturating_mul(1000);
    stats.cpu.usage.total = nanos("usage_usec");
    stats.cpu.usage.user = nanos("user_usec");
    stats.cpu.usage.kernel = nanos("system_usec");
    stats.cpu.throttling.periods = get("nr_periods");
    stats.cpu.throttling.throttled_periods = get("nr_throttled");
    stats.cpu.throttling.throttled_time = nanos("throttled_usec");
    Ok(())
}
