//! v1 blkio controller: weights and throttling per device, I/O counters.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::hierarchy::ControllerDirs;
use crate::error::{CgroupError, Result};
use crate::fs;
use crate::keyed::device_numbers;
use crate::plan::WritePlan;
use crate::resource_values::device_key;
use crate::stats::{BlkioEntry, Stats};

/// Plans `linux.resources.blockIO`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(block_io) = resources.block_io() else {
        return Ok(());
    };
    if !is_set(block_io) {
        return Ok(());
    }
    let dir = dirs.require("blkio", "linux.resources.blockIO")?;
    // CFQ provided blkio.weight; since 5.0 only BFQ is left, with blkio.bfq.weight.
    let weight_prefix = if fs::exists(&dir.join("blkio.weight")) {
        "blkio"
    } else {
        "blkio.bfq"
    };
    if let Some(weight) = block_io.weight() {
        let file = format!("{weight_prefix}.weight");
        require_file(dir, &file, "linux.resources.blockIO.weight")?;
        plan.set(dir, &file, weight);
    }
    if let Some(leaf_weight) = block_io.leaf_weight() {
        require_file(
            dir,
            "blkio.leaf_weight",
            "linux.resources.blockIO.leafWeight",
        )?;
        plan.set(dir, "blkio.leaf_weight", leaf_weight);
    }
    for device in block_io.weight_device().iter().flatten() {
        let resource = "linux.resources.blockIO.weightDevice";
        let key = device_key(resource, device.major(), device.minor())?;
        if let Some(weight) = device.weight() {
            let file = format!("{weight_prefix}.weight_device");
            require_file(dir, &file, resource)?;
            plan.command(dir, &file, format!("{key} {weight}"));
        }
        if let Some(leaf_weight) = device.leaf_weight() {
            require_file(dir, "blkio.leaf_weight_device", resource)?;
            plan.command(
                dir,
                "blkio.leaf_weight_device",
                format!("{key} {leaf_weight}"),
            );
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            block_io.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            block_io.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            block_io.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            block_io.throttle_write_iops_device(),
        ),
    ];
    for (field, file, devices) in throttles {
        plan_throttles(
            dir,
            field,
            file,
            devices.as_deref().unwrap_or_default(),
            plan,
        )?;
    }
    Ok(())
}

fn is_set(block_io: &LinuxBlockIo) -> bool {
    fn non_empty<T>(list: &Option<Vec<T>>) -> bool {
        list.as_ref().is_some_and(|list| !list.is_empty())
    }
    block_io.weight().is_some()
        || block_io.leaf_weight().is_some()
        || non_empty(block_io.weight_device())
        || non_empty(block_io.throttle_read_bps_device())
        || non_empty(block_io.throttle_write_bps_device())
        || non_empty(block_io.throttle_read_iops_device())
        || non_empty(block_io.throttle_write_iops_device())
}

/// One `major:minor rate` command per device; rate 0 removes the device's limit.
fn plan_throttles(
    dir: &Path,
    field: &str,
    file: &str,
    devices: &[LinuxThrottleDevice],
    plan: &mut WritePlan,
) -> Result<()> {
    for device in devices {
        let resource = format!("linux.resources.blockIO.{field}");
        let key = device_key(&resource, device.major(), device.minor())?;
        plan.command(dir, file, format!("{key} {}", device.rate()));
    }
    Ok(())
}

/// Weight files depend on the kernel's I/O schedulers: say which file is missing rather than
/// failing later with a bare ENOENT.
fn require_file(dir: &Path, file: &str, resource: &str) -> Result<()> {
    if fs::exists(&dir.join(file)) {
        Ok(())
    } else {
        Err(CgroupError::Unsupported {
            what: resource.to_string(),
            reason: format!(
                "{} does not exist (no I/O scheduler with weights on this kernel)",
                dir.join(file).display()
            ),
        })
    }
}

/// Fills `stats.blkio` from the first counter family that has data: CFQ's, BFQ's, then the
/// throttling layer's (which counts every I/O, whatever the scheduler).
pub(super) fn stats(dirs: &ControllerDirs, stats: &mut Stats) -> Result<()> {
    let Some(dir) = dirs.get("blkio") else {
        return Ok(());
    };
    for prefix in ["blkio", "blkio.bfq", "blkio.throttle"] {
        let bytes = read_entries(&dir.join(format!("{prefix}.io_service_bytes_recursive")))?;
        if bytes.is_empty() {
            continue;
        }
        stats.blkio.io_service_bytes_recursive = bytes;
        stats.blkio.io_serviced_recursive =
            read_entries(&dir.join(format!("{prefix}.io_serviced_recursive")))?;
        break;
    }
    Ok(())
}

/// Reads `major:minor Op value` lines; the closing `Total value` line is not a device.
fn read_entries(path: &Path) -> Result<Vec<BlkioEntry>> {
    let Some(content) = fs::read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for line in content.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            [] | ["Total", _] => {}
            [device, op, value] => {
                let (major, minor) =
                    device_numbers(device).ok_or_else(|| fs::parse_error(path, line))?;
                let value = value.parse().map_err(|_| fs::parse_error(path, line))?;
                entries.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
            _ => return Err(fs::parse_error(path, line)),
        }
    }
    Ok(entries)
}
