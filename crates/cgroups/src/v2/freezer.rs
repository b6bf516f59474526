//! v2 freezer: `cgroup.freeze` (Linux 5.2+), with the outcome reported in `cgroup.events`.

use std::path::Path;
use std::time::Duration;

use crate::error::{CgroupError, Result};
use crate::fs::{self, WriteMode};
use crate::keyed::flat_keyed;
use crate::wait;

const FREEZE: &str = "cgroup.freeze";
const EVENTS: &str = "cgroup.events";

/// Freezes the cgroup and waits until `cgroup.events` reports `frozen 1`; on timeout the
/// cgroup is thawed again so that a failed pause does not leave it half frozen.
pub(super) fn freeze(dir: &Path, timeout: Duration) -> Result<()> {
    set(dir, true, timeout)
}

/// Thaws the cgroup and waits until `cgroup.events` reports `frozen 0`.
pub(super) fn thaw(dir: &Path, timeout: Duration) -> Result<()> {
    set(dir, false, timeout)
}

fn set(dir: &Path, frozen: bool, timeout: Duration) -> Result<()> {
    let freeze = dir.join(FREEZE);
    if !fs::exists(&freeze) {
        return Err(CgroupError::Unsupported {
            what: if frozen { "pausing" } else { "resuming" }.to_string() + " a container",
            reason: format!(
                "{} does not exist (needs Linux 5.2 or later)",
                freeze.display()
            ),
        });
    }
    fs::write_value(&freeze, if frozen { "1" } else { "0" }, WriteMode::Replace)?;
    if wait::until(timeout, || Ok(reported_frozen(dir)? == frozen))? {
        return Ok(());
    }
    if frozen {
        fs::write_value(&freeze, "0", WriteMode::Replace)?;
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.join(EVENTS),
        expected: format!("frozen {}", u8::from(frozen)),
    })
}

/// Whether the kernel reports the cgroup frozen; without a v2 freezer it never is.
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    if !fs::exists(&dir.join(FREEZE)) {
        return Ok(false);
    }
    reported_frozen(dir)
}

fn reported_frozen(dir: &Path) -> Result<bool> {
    let content = fs::read_string(&dir.join(EVENTS))?;
    Ok(flat_keyed(&content).get("frozen") == Some(&1))
}
