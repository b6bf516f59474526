//! Reading and writing cgroup interface files.
//!
//! Files are never created: a value written to a file the kernel does not provide must fail
//! with ENOENT naming that file, not leave a stray regular file behind (and over a fake tree in
//! tests, the same rule makes a missing file visible).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use crate::error::{CgroupError, Result};

/// How a value is written to an interface file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// The file holds one value: the write replaces it (`echo v > file`).
    Replace,
    /// The file takes commands (`devices.allow`, `cgroup.procs`, `cgroup.subtree_control`):
    /// each write is one command on its own line. cgroupfs ignores the offset, so appending is
    /// the same there; a plain file keeps the whole sequence, which is what tests over a fake
    /// tree read back.
    Append,
}

/// Writes `value` to `path` in a single write(2), as cgroupfs requires.
pub(crate) fn write_value(path: &Path, value: &str, mode: WriteMode) -> Result<()> {
    let write_error = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut options = OpenOptions::new();
    let payload = match mode {
        WriteMode::Replace => {
            options.write(true).truncate(true);
            value.to_string()
        }
        WriteMode::Append => {
            options.append(true);
            format!("{value}\n")
        }
    };
    let mut file = options.open(path).map_err(write_error)?;
    let written = file.write(payload.as_bytes()).map_err(write_error)?;
    if written != payload.len() {
        return Err(write_error(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", payload.len()),
        )));
    }
    Ok(())
}

/// Reads a whole interface file.
pub(crate) fn read_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole interface file, or `None` when the kernel does not provide it.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(content) => Ok(Some(content)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a file holding one unsigned number (`max` reads as `u64::MAX`).
pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let content = read_string(path)?;
    crate::keyed::parse_u64_or_max(&content).ok_or_else(|| parse_error(path, &content))
}

/// Like [`read_u64`], but a file the kernel does not provide reads as `None`.
pub(crate) fn read_u64_optional(path: &Path) -> Result<Option<u64>> {
    match read_optional(path)? {
        None => Ok(None),
        Some(content) => crate::keyed::parse_u64_or_max(&content)
            .map(Some)
            .ok_or_else(|| parse_error(path, &content)),
    }
}

/// The error for content this crate does not understand.
pub(crate) fn parse_error(path: &Path, content: &str) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        content: content.trim().to_string(),
    }
}

/// Whether an interface file exists (used to pick between alternatives such as
/// `blkio.weight` and `blkio.bfq.weight`).
pub(crate) fn exists(path: &Path) -> bool {
    path.exists()
}

/// Reads the pids listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>> {
    let content = read_string(path)?;
    content
        .split_whitespace()
        .map(|word| word.parse().map_err(|_| parse_error(path, &content)))
        .collect()
}
