//! v2 memory controller: limits, protection, swap, usage.
//!
//! OCI's `swap` is v1's memsw (memory plus swap); v2 limits swap alone, so
//! `memory.swap.max = swap - limit`.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::controllers::Cgroup;
use crate::error::{CgroupError, Result};
use crate::fs;
use crate::keyed::flat_keyed;
use crate::plan::WritePlan;
use crate::resource_values::invalid;
use crate::stats::Stats;

const SWAP_MAX: &str = "memory.swap.max";

/// A v2 limit value: -1 (OCI's unlimited) is `max`.
fn limit_value(value: i64) -> String {
    if value == -1 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// The `memory.swap.max` value for OCI's memory+swap `swap` and memory `limit` (both already
/// with 0 read as "not set"), or `None` when swap is left as it is.
pub(crate) fn swap_max(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    match (swap, limit) {
        // Lifting the memory limit without a word on swap lifts the swap limit too, as on v1.
        (None, Some(-1)) | (Some(-1), _) => Ok(Some("max".to_string())),
        (None, _) => Ok(None),
        (Some(swap), Some(limit)) if limit > 0 => {
            if swap < limit {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!(
                        "{swap} is below the memory limit {limit} (swap counts memory plus swap)"
                    ),
                ));
            }
            Ok(Some((swap - limit).to_string()))
        }
        (Some(swap), _) => Err(invalid(
            "linux.resources.memory.swap",
            format!("{swap} needs a memory limit: on cgroup v2 the swap limit is swap minus limit"),
        )),
    }
}

/// Plans `linux.resources.memory`. `kernel` and `kernelTCP` are ignored (v2 has no separate
/// kernel memory limits; kernel memory counts toward `memory.max`).
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(memory) = resources.memory() else {
        return Ok(());
    };
    reject_v1_only(memory)?;
    let set = |value: Option<i64>| value.filter(|&v| v != 0);
    let limit = set(memory.limit());
    let reservation = set(memory.reservation());
    let swap = set(memory.swap());
    for (name, value) in [
        ("limit", limit),
        ("reservation", reservation),
        ("swap", swap),
    ] {
        if let Some(value) = value.filter(|&v| v < -1) {
            return Err(invalid(
                format!("linux.resources.memory.{name}"),
                format!("{value} is negative (only -1, unlimited, is allowed)"),
            ));
        }
    }
    let swap_explicit = swap.is_some();
    let swap_max = swap_max(swap, limit)?;
    if limit.is_none() && reservation.is_none() && swap_max.is_none() {
        return Ok(());
    }
    let dir = cgroup.require("memory", "linux.resources.memory")?;
    if memory.check_before_update() == Some(true) {
        check_not_below_usage(dir, limit)?;
    }
    if let Some(limit) = limit {
        plan.set(dir, "memory.max", limit_value(limit));
    }
    if let Some(reservation) = reservation {
        plan.set(dir, "memory.low", limit_value(reservation));
    }
    if let Some(swap_max) = swap_max {
        if fs::exists(&dir.join(SWAP_MAX)) {
            plan.set(dir, SWAP_MAX, swap_max);
        } else if swap_explicit && swap_max != "max" {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.memory.swap".to_string(),
                reason: format!(
                    "{} does not exist (the kernel runs without swap accounting)",
                    dir.join(SWAP_MAX).display()
                ),
            });
        }
    }
    Ok(())
}

/// Settings with no v2 counterpart: refusing them is clearer than ignoring them.
fn reject_v1_only(memory: &LinuxMemory) -> Result<()> {
    let unsupported = |what: &str| CgroupError::Unsupported {
        what: format!("linux.resources.memory.{what}"),
        reason: "cgroup v2 has no such setting".to_string(),
    };
    if memory.swappiness().is_some() {
        return Err(unsupported("swappiness"));
    }
    if memory.disable_oom_killer() == Some(true) {
        return Err(unsupported("disableOOMKiller"));
    }
    Ok(())
}

/// `checkBeforeUpdate`: refuse a limit below what the cgroup already uses.
fn check_not_below_usage(dir: &Path, limit: Option<i64>) -> Result<()> {
    let Some(limit) = limit.and_then(|l| u64::try_from(l).ok()) else {
        return Ok(());
    };
    let usage = fs::read_u64(&dir.join("memory.current"))?;
    if limit < usage {
        return Err(invalid(
            "linux.resources.memory.limit",
            format!("{limit} is below the current usage {usage} and checkBeforeUpdate is set"),
        ));
    }
    Ok(())
}

/// Fills `stats.memory`. Swap is reported as memory plus swap, the v1 meaning runc keeps.
pub(super) fn stats(cgroup: &Cgroup, stats: &mut Stats) -> Result<()> {
    if !cgroup.has("memory") {
        return Ok(());
    }
    let dir = cgroup.dir();
    let read = |name: &str| fs::read_u64_optional(&dir.join(name));
    let memory = &mut stats.memory;
    memory.usage.usage = read("memory.current")?.unwrap_or(0);
    memory.usage.limit = read("memory.max")?.unwrap_or(0);
    memory.usage.max = read("memory.peak")?.unwrap_or(0);
    if let Some(content) = fs::read_optional(&dir.join("memory.events"))? {
        memory.usage.failcnt = flat_keyed(&content).get("max").copied().unwrap_or(0);
    }
    if let Some(swap_usage) = read("memory.swap.current")? {
        memory.swap.usage = swap_usage.saturating_add(memory.usage.usage);
        memory.swap.limit = read(SWAP_MAX)?
            .unwrap_or(u64::MAX)
            .saturating_add(memory.usage.limit);
    }
    if let Some(content) = fs::read_optional(&dir.join("memory.stat"))? {
        memory.raw = flat_keyed(&content);
        memory.cache = memory.raw.get("file").copied().unwrap_or(0);
    }
    Ok(())
}

/// The `oom_kill` counter of `memory.events`.
pub(super) fn oom_kill_count(cgroup: &Cgroup) -> Result<u64> {
    let dir = cgroup.require("memory", "counting OOM kills")?;
    let content = fs::read_string(&dir.join("memory.events"))?;
    Ok(flat_keyed(&content).get("oom_kill").copied().unwrap_or(0))
}
