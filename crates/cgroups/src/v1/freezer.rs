//! v1 freezer controller: pausing and resuming every task of the cgroup.

use std::path::Path;
use std::time::Duration;

use super::hierarchy::ControllerDirs;
use crate::error::{CgroupError, Result};
use crate::fs::{self, WriteMode};
use crate::wait;

const STATE: &str = "freezer.state";
const FROZEN: &str = "FROZEN";
const THAWED: &str = "THAWED";

/// Freezes the cgroup and waits until `freezer.state` reads FROZEN. While it reads FREEZING
/// (a task is in an uninterruptible sleep, or was forking), FROZEN is written again, which
/// makes the kernel retry the tasks that were missed. On timeout the cgroup is thawed again
/// so that a failed pause does not leave the container half frozen.
pub(super) fn freeze(dirs: &ControllerDirs, timeout: Duration) -> Result<()> {
    let dir = dirs.require("freezer", "pausing the container")?;
    let state = dir.join(STATE);
    let frozen = wait::until(timeout, || {
        fs::write_value(&state, FROZEN, WriteMode::Replace)?;
        Ok(read_state(dir)? == FROZEN)
    })?;
    if frozen {
        return Ok(());
    }
    fs::write_value(&state, THAWED, WriteMode::Replace)?;
    Err(CgroupError::FreezeTimeout {
        path: state,
        expected: FROZEN.to_string(),
    })
}

/// Thaws the cgroup and waits until `freezer.state` reads THAWED.
pub(super) fn thaw(dirs: &ControllerDirs, timeout: Duration) -> Result<()> {
    let dir = dirs.require("freezer", "resuming the container")?;
    let state = dir.join(STATE);
    fs::write_value(&state, THAWED, WriteMode::Replace)?;
    if wait::until(timeout, || Ok(read_state(dir)? == THAWED))? {
        Ok(())
    } else {
        Err(CgroupError::FreezeTimeout {
            path: state,
            expected: THAWED.to_string(),
        })
    }
}

/// Whether the cgroup is fully frozen (FREEZING counts as not yet).
pub(super) fn is_frozen(dirs: &ControllerDirs) -> Result<bool> {
    let dir = dirs.require("freezer", "reading whether the container is paused")?;
    Ok(read_state(dir)? == FROZEN)
}

fn read_state(dir: &Path) -> Result<String> {
    Ok(fs::read_string(&dir.join(STATE))?.trim().to_string())
}
