//! v2 io controller: weights, per-device limits (`io.max`) and I/O counters.

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::controllers::Cgroup;
use crate::error::{CgroupError, Result};
use crate::fs;
use crate::keyed::{device_numbers, nested_keyed};
use crate::plan::WritePlan;
use crate::resource_values::{device_key, invalid};
use crate::stats::{BlkioEntry, Stats};

/// v1 blkio weight range.
const MIN_BLKIO_WEIGHT: u16 = 10;
const MAX_BLKIO_WEIGHT: u16 = 1000;

/// `io.weight` for a v1 blkio weight: the linear map of [10, 1000] onto [1, 10000] used by
/// runc and crun.
pub(crate) fn io_weight_from_blkio(weight: u16) -> Result<u64> {
    if !(MIN_BLKIO_WEIGHT..=MAX_BLKIO_WEIGHT).contains(&weight) {
        return Err(invalid(
            "linux.resources.blockIO weight",
            format!("{weight} is outside {MIN_BLKIO_WEIGHT}..={MAX_BLKIO_WEIGHT}"),
        ));
    }
    Ok(1 + (u64::from(weight) - u64::from(MIN_BLKIO_WEIGHT)) * 9999 / 990)
}

/// Plans `linux.resources.blockIO`. Weights go to `io.weight` (converted) and, where the BFQ
/// scheduler provides it, to `io.bfq.weight` (which takes v1's range unchanged); `leafWeight`
/// has no v2 counterpart and is ignored.
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(block_io) = resources.block_io() else {
        return Ok(());
    };
    let weight_devices = block_io.weight_device().as_deref().unwrap_or_default();
    let limits = io_max_lines(block_io)?;
    let wants_weight =
        block_io.weight().is_some() || weight_devices.iter().any(|d| d.weight().is_some());
    if !wants_weight && limits.is_empty() {
        return Ok(());
    }
    let dir = cgroup.require("io", "linux.resources.blockIO")?;
    if wants_weight {
        let has_io_weight = fs::exists(&dir.join("io.weight"));
        let has_bfq_weight = fs::exists(&dir.join("io.bfq.weight"));
        if !has_io_weight && !has_bfq_weight {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.blockIO weights".to_string(),
                reason: format!(
                    "neither io.weight nor io.bfq.weight exists in {}",
                    dir.display()
                ),
            });
        }
        let mut entries = Vec::new();
        if let Some(weight) = block_io.weight() {
            entries.push(("default".to_string(), weight));
        }
        for device in weight_devices {
            if let Some(weight) = device.weight() {
                let key = device_key(
                    "linux.resources.blockIO.weightDevice",
                    device.major(),
                    device.minor(),
                )?;
                entries.push((key, weight));
            }
        }
        for (key, weight) in entries {
            if has_io_weight {
                plan.command(
                    dir,
                    "io.weight",
                    format!("{key} {}", io_weight_from_blkio(weight)?),
                );
            }
            if has_bfq_weight {
                plan.command(dir, "io.bfq.weight", format!("{key} {weight}"));
            }
        }
    }
    for line in limits {
        plan.command(dir, "io.max", line);
    }
    Ok(())
}

/// One `io.max` line per device and limit kind; rate 0 writes `max`, which removes it.
fn io_max_lines(block_io: &LinuxBlockIo) -> Result<Vec<String>> {
    let kinds: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "throttleReadBpsDevice",
            "rbps",
            block_io.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            block_io.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            block_io.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            block_io.throttle_write_iops_device(),
        ),
    ];
    let mut lines = Vec::new();
    for (field, key, devices) in kinds {
        for device in devices.as_deref().unwrap_or_default() {
            let resource = format!("linux.resources.blockIO.{field}");
            let device_key = device_key(&resource, device.major(), device.minor())?;
            let rate = match device.rate() {
                0 => "max".to_string(),
                rate => rate.to_string(),
            };
            lines.push(format!("{device_key} {key}={rate}"));
        }
    }
    Ok(lines)
}

/// Fills `stats.blkio` from `io.stat`.
pub(super) fn stats(cgroup: &Cgroup, stats: &mut Stats) -> Result<()> {
    if !cgroup.has("io") {
        return Ok(());
    }
    let Some(content) = fs::read_optional(&cgroup.dir().join("io.stat"))? else {
        return Ok(());
    };
    for line in nested_keyed(&content) {
        let Some((major, minor)) = device_numbers(&line.key) else {
            continue;
        };
        let entry = |op: &str, key: &str| BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: line.values.get(key).copied().unwrap_or(0),
        };
        let blkio = &mut stats.blkio;
        blkio
            .io_service_bytes_recursive
            .push(entry("Read", "rbytes"));
        blkio
            .io_service_bytes_recursive
            .push(entry("Write", "wbytes"));
        blkio.io_serviced_recursive.push(entry("Read", "rios"));
        blkio.io_serviced_recursive.push(entry("Write", "wios"));
    }
    Ok(())
}
