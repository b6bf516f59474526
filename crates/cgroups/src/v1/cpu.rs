//! v1 cpu controller (shares, CFS bandwidth, realtime) and cpuacct (usage counters).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::fs;
use crate::keyed::{flat_keyed, number_list};
use crate::plan::WritePlan;
use crate::stats::Stats;

/// Length of a clock tick in `cpuacct.stat`, in ns. USER_HZ is part of the kernel ABI and is
/// 100 on every architecture vessel builds for; only used where the kernel lacks the
/// nanosecond files `cpuacct.usage_user` / `cpuacct.usage_sys`.
const NANOS_PER_USER_HZ_TICK: u64 = 10_000_000;

/// Plans the cpu-controller part of `linux.resources.cpu` (cpus and mems are cpuset's).
/// Zero means "not set" for shares, quota, period and the realtime values, as in runc.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    let shares = cpu.shares().filter(|&v| v != 0);
    let period = cpu.period().filter(|&v| v != 0);
    let quota = cpu.quota().filter(|&v| v != 0);
    let rt_period = cpu.realtime_period().filter(|&v| v != 0);
    let rt_runtime = cpu.realtime_runtime().filter(|&v| v != 0);
    let burst = cpu.burst();
    let idle = cpu.idle();
    if shares.is_none()
        && period.is_none()
        && quota.is_none()
        && rt_period.is_none()
        && rt_runtime.is_none()
        && burst.is_none()
        && idle.is_none()
    {
        return Ok(());
    }
    let dir = dirs.require("cpu", "linux.resources.cpu")?;
    if let Some(shares) = shares {
        plan.set(dir, "cpu.shares", shares);
    }
    // The period first: the kernel checks a new quota against the period in force.
    if let Some(period) = period {
        plan.set(dir, "cpu.cfs_period_us", period);
    }
    if let Some(quota) = quota {
        plan.set(dir, "cpu.cfs_quota_us", quota);
    }
    if let Some(burst) = burst {
        plan.set(dir, "cpu.cfs_burst_us", burst);
    }
    // Likewise the realtime period before the runtime that must fit in it.
    if let Some(rt_period) = rt_period {
        plan.set(dir, "cpu.rt_period_us", rt_period);
    }
    if let Some(rt_runtime) = rt_runtime {
        plan.set(dir, "cpu.rt_runtime_us", rt_runtime);
    }
    if let Some(idle) = idle {
        plan.set(dir, "cpu.idle", idle);
    }
    Ok(())
}

/// Fills `stats.cpu`: usage from cpuacct, throttling from cpu.
pub(super) fn stats(dirs: &ControllerDirs, stats: &mut Stats) -> Result<()> {
    if let Some(dir) = dirs.get("cpuacct") {
        usage(dir, stats)?;
    }
    if let Some(dir) = dirs.get("cpu") {
        if let Some(content) = fs::read_optional(&dir.join("cpu.stat"))? {
            let values = flat_keyed(&content);
            let throttling = &mut stats.cpu.throttling;
            throttling.periods = values.get("nr_periods").copied().unwrap_or(0);
            throttling.throttled_periods = values.get("nr_throttled").copied().unwrap_or(0);
            throttling.throttled_time = values.get("throttled_time").copied().unwrap_or(0);
        }
    }
    Ok(())
}

fn usage(dir: &Path, stats: &mut Stats) -> Result<()> {
    let usage = &mut stats.cpu.usage;
    usage.total = fs::read_u64_optional(&dir.join("cpuacct.usage"))?.unwrap_or(0);
    usage.percpu = read_list(dir, "cpuacct.usage_percpu")?;
    usage.percpu_kernel = read_list(dir, "cpuacct.usage_percpu_sys")?;
    usage.percpu_user = read_list(dir, "cpuacct.usage_percpu_user")?;
    let user = fs::read_u64_optional(&dir.join("cpuacct.usage_user"))?;
    let kernel = fs::read_u64_optional(&dir.join("cpuacct.usage_sys"))?;
    if let (Some(user), Some(kernel)) = (user, kernel) {
        usage.user = user;
        usage.kernel = kernel;
    } else if let Some(content) = fs::read_optional(&dir.join("cpuacct.stat"))? {
        let ticks = flat_keyed(&content);
        let nanos = |key| {
            ticks
                .get(key)
                .copied()
                .unwrap_or(0)
                .saturating_mul(NANOS_PER_USER_HZ_TICK)
        };
        usage.user = nanos("user");
        usage.kernel = nanos("system");
    }
    Ok(())
}

fn read_list(dir: &Path, name: &str) -> Result<Vec<u64>> {
    let path = dir.join(name);
    match fs::read_optional(&path)? {
        None => Ok(Vec::new()),
        Some(content) => number_list(&content).ok_or_else(|| fs::parse_error(&path, &content)),
    }
}
