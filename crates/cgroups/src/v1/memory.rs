//! v1 memory controller: limits, swap (memsw), OOM settings, usage.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::hierarchy::ControllerDirs;
use crate::error::{CgroupError, Result};
use crate::fs;
use crate::keyed::flat_keyed;
use crate::plan::WritePlan;
use crate::resource_values::invalid;
use crate::stats::{MemoryEntry, Stats};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const SOFT_LIMIT: &str = "memory.soft_limit_in_bytes";
const SWAPPINESS: &str = "memory.swappiness";
const OOM_CONTROL: &str = "memory.oom_control";
const KMEM_TCP_LIMIT: &str = "memory.kmem.tcp.limit_in_bytes";
const USAGE: &str = "memory.usage_in_bytes";

/// The values to write, after OCI's conventions are resolved (0 means "not set", as runc
/// reads it; -1 means unlimited).
#[derive(Debug, Default)]
struct Wanted {
    limit: Option<i64>,
    memsw: Option<i64>,
    reservation: Option<i64>,
    swappiness: Option<u64>,
    disable_oom_killer: Option<bool>,
    kernel_tcp: Option<i64>,
}

impl Wanted {
    fn from(memory: &LinuxMemory) -> Result<Self> {
        let set = |value: Option<i64>| value.filter(|&v| v != 0);
        let wanted = Self {
            limit: set(memory.limit()),
            memsw: set(memory.swap()),
            reservation: set(memory.reservation()),
            swappiness: memory.swappiness(),
            disable_oom_killer: memory.disable_oom_killer(),
            kernel_tcp: set(memory.kernel_tcp()),
        };
        for (name, value) in [
            ("limit", wanted.limit),
            ("swap", wanted.memsw),
            ("reservation", wanted.reservation),
            ("kernelTCP", wanted.kernel_tcp),
        ] {
            if let Some(value) = value.filter(|&v| v < -1) {
                return Err(invalid(
                    format!("linux.resources.memory.{name}"),
                    format!("{value} is negative (only -1, unlimited, is allowed)"),
                ));
            }
        }
        if let (Some(limit), Some(memsw)) = (wanted.limit, wanted.memsw) {
            if limit > 0 && memsw > 0 && memsw < limit {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!(
                        "{memsw} is below the memory limit {limit} (swap counts memory plus swap)"
                    ),
                ));
            }
        }
        if let Some(swappiness) = wanted.swappiness.filter(|&s| s > 100) {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                format!("{swappiness} is above 100"),
            ));
        }
        Ok(wanted)
    }

    fn is_empty(&self) -> bool {
        self.limit.is_none()
            && self.memsw.is_none()
            && self.reservation.is_none()
            && self.swappiness.is_none()
            && self.disable_oom_killer.is_none()
            && self.kernel_tcp.is_none()
    }
}

/// Plans `linux.resources.memory`. `kernel` (kmem) is ignored: the kernel dropped kmem limits
/// in 5.4 and the spec deprecates it; `useHierarchy` is ignored as always-on since 5.x.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(memory) = resources.memory() else {
        return Ok(());
    };
    let mut wanted = Wanted::from(memory)?;
    if wanted.is_empty() {
        return Ok(());
    }
    let dir = dirs.require("memory", "linux.resources.memory")?;
    let memsw_available = fs::exists(&dir.join(MEMSW_LIMIT));
    // Lifting the memory limit without a word on swap lifts the memsw limit too; otherwise
    // the old memsw limit would keep capping memory (runc does the same).
    if wanted.limit == Some(-1) && wanted.memsw.is_none() && memsw_available {
        wanted.memsw = Some(-1);
    }
    if let Some(memsw) = wanted.memsw {
        if !memsw_available {
            if memsw != -1 {
                return Err(CgroupError::Unsupported {
                    what: "linux.resources.memory.swap".to_string(),
                    reason: format!(
                        "{} does not exist (the kernel runs without swap accounting)",
                        dir.join(MEMSW_LIMIT).display()
                    ),
                });
            }
            // "Unlimited swap" is what a kernel without swap accounting gives anyway.
            wanted.memsw = None;
        }
    }
    if memory.check_before_update() == Some(true) {
        check_not_below_usage(dir, wanted.limit)?;
    }

    match (wanted.limit, wanted.memsw) {
        (Some(limit), Some(memsw)) => {
            // memsw must stay >= memory at every step: when the memory limit grows, raise
            // memsw first; when it shrinks, lower memory first.
            let current = fs::read_u64(&dir.join(LIMIT))?;
            let growing = limit == -1 || u64::try_from(limit).is_ok_and(|l| l > current);
            if growing {
                plan.set(dir, MEMSW_LIMIT, memsw);
                plan.set(dir, LIMIT, limit);
            } else {
                plan.set(dir, LIMIT, limit);
                plan.set(dir, MEMSW_LIMIT, memsw);
            }
        }
        (Some(limit), None) => plan.set(dir, LIMIT, limit),
        (None, Some(memsw)) => plan.set(dir, MEMSW_LIMIT, memsw),
        (None, None) => {}
    }
    if let Some(reservation) = wanted.reservation {
        plan.set(dir, SOFT_LIMIT, reservation);
    }
    if let Some(swappiness) = wanted.swappiness {
        plan.set(dir, SWAPPINESS, swappiness);
    }
    if let Some(disable) = wanted.disable_oom_killer {
        plan.set(dir, OOM_CONTROL, u8::from(disable));
    }
    if let Some(kernel_tcp) = wanted.kernel_tcp {
        plan.set(dir, KMEM_TCP_LIMIT, kernel_tcp);
    }
    Ok(())
}

/// `checkBeforeUpdate`: refuse a limit below what the cgroup already uses, instead of letting
/// the kernel reclaim or OOM-kill to reach it.
fn check_not_below_usage(dir: &Path, limit: Option<i64>) -> Result<()> {
    let Some(limit) = limit.and_then(|l| u64::try_from(l).ok()) else {
        return Ok(());
    };
    let usage = fs::read_u64(&dir.join(USAGE))?;
    if limit < usage {
        return Err(invalid(
            "linux.resources.memory.limit",
            format!("{limit} is below the current usage {usage} and checkBeforeUpdate is set"),
        ));
    }
    Ok(())
}

/// Fills `stats.memory` when the memory hierarchy is mounted.
pub(super) fn stats(dirs: &ControllerDirs, stats: &mut Stats) -> Result<()> {
    let Some(dir) = dirs.get("memory") else {
        return Ok(());
    };
    let memory = &mut stats.memory;
    memory.usage = entry(dir, "memory")?;
    memory.swap = entry(dir, "memory.memsw")?;
    memory.kernel = entry(dir, "memory.kmem")?;
    memory.kernel_tcp = entry(dir, "memory.kmem.tcp")?;
    if let Some(content) = fs::read_optional(&dir.join("memory.stat"))? {
        memory.raw = flat_keyed(&content);
        memory.cache = memory.raw.get("cache").copied().unwrap_or(0);
    }
    Ok(())
}

/// One counter family: `<prefix>.usage_in_bytes`, `.max_usage_in_bytes`, `.failcnt`,
/// `.limit_in_bytes`.
fn entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let read = |suffix: &str| fs::read_u64_optional(&dir.join(format!("{prefix}.{suffix}")));
    Ok(MemoryEntry {
        limit: read("limit_in_bytes")?.unwrap_or(0),
        usage: read("usage_in_bytes")?.unwrap_or(0),
        max: read("max_usage_in_bytes")?.unwrap_or(0),
        failcnt: read("failcnt")?.unwrap_or(0),
    })
}

/// The `oom_kill` counter of `memory.oom_control` (0 on kernels before 4.13, which lack it).
pub(super) fn oom_kill_count(dirs: &ControllerDirs) -> Result<u64> {
    let dir = dirs.require("memory", "counting OOM kills")?;
    let content = fs::read_string(&dir.join(OOM_CONTROL))?;
    Ok(flat_keyed(&content).get("oom_kill").copied().unwrap_or(0))
}
