//! Which cgroup version the host uses.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use crate::error::{CgroupError, Result};

/// `CGROUP2_SUPER_MAGIC` from linux/magic.h. Spelled out instead of taken from libc because
/// libc types it as the C library's `f_type` (signed on glibc, unsigned on musl).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The cgroup layout of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CgroupMode {
    /// Controllers are separate v1 hierarchies under `<root>/<controller>`. Hybrid hosts (a
    /// cgroup2 tree at `<root>/unified` next to v1 controllers) count as v1: their v2 tree
    /// holds at most `hugetlb`, every other controller is bound to a v1 hierarchy.
    V1,
    /// `<root>` itself is the cgroup2 unified hierarchy.
    V2,
}

/// Detects the layout from the filesystem type of `root` (normally `/sys/fs/cgroup`):
/// cgroup2 there means [`CgroupMode::V2`], anything else (a tmpfs holding v1 mounts)
/// [`CgroupMode::V1`].
pub fn detect_mode(root: &Path) -> Result<CgroupMode> {
    let statfs_error = |source| CgroupError::Statfs {
        path: root.to_path_buf(),
        source,
    };
    let c_path = CString::new(root.as_os_str().as_bytes()).map_err(|_| {
        statfs_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains a NUL byte",
        ))
    })?;
    let mut stat = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable memory
    // large enough for a `struct statfs`; the kernel fills it in on success.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(statfs_error(io::Error::last_os_error()));
    }
    // SAFETY: statfs returned 0, so the kernel initialised the whole struct.
    let stat = unsafe { stat.assume_init() };
    // `f_type` is a signed long on glibc: reinterpret its bits, a magic number has no sign.
    #[allow(clippy::unnecessary_cast)]
    let fs_type = stat.f_type as u64;
    if fs_type == CGROUP2_SUPER_MAGIC {
        Ok(CgroupMode::V2)
    } else {
        Ok(CgroupMode::V1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_v1() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_mode(dir.path()).unwrap(), CgroupMode::V1);
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let error = detect_mode(Path::new("/nonexistent/vessel-cgroup-root")).unwrap_err();
        assert!(error
            .to_string()
            .contains("/nonexistent/vessel-cgroup-root"));
        assert!(std::error::Error::source(&error).is_some());
    }
}
