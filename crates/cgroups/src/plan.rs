//! A resource update as an ordered list of file writes, built before anything is written.
//!
//! `apply` first turns the whole `LinuxResources` into a plan, checking every value and every
//! controller it needs; only a plan that is complete gets executed. So a malformed value or a
//! missing controller changes nothing. (A value the kernel itself refuses part way through
//! still leaves the writes before it in place, as with every runtime: cgroupfs has no
//! transactions.)

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs::{self, WriteMode};

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedWrite {
    pub(crate) path: PathBuf,
    pub(crate) value: String,
    pub(crate) mode: WriteMode,
}

/// Writes to make, in order.
#[derive(Debug, Default)]
pub(crate) struct WritePlan {
    writes: Vec<PlannedWrite>,
}

impl WritePlan {
    /// Sets a single-value file (`memory.max`, `cpu.shares`, ...).
    pub(crate) fn set(&mut self, dir: &Path, file: &str, value: impl ToString) {
        self.push(dir, file, value.to_string(), WriteMode::Replace);
    }

    /// Sends one command to a command file (`devices.allow`, `io.max`, ...), where each write
    /// adds or changes one entry.
    pub(crate) fn command(&mut self, dir: &Path, file: &str, value: impl ToString) {
        self.push(dir, file, value.to_string(), WriteMode::Append);
    }

    fn push(&mut self, dir: &Path, file: &str, value: String, mode: WriteMode) {
        self.writes.push(PlannedWrite {
            path: dir.join(file),
            value,
            mode,
        });
    }

    /// Performs the writes in order, stopping at the first the kernel refuses.
    pub(crate) fn execute(&self) -> Result<()> {
        for write in &self.writes {
            fs::write_value(&write.path, &write.value, write.mode)?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn writes(&self) -> &[PlannedWrite] {
        &self.writes
    }
}
