//! The bodies of `PUT /snapshot/create` and `PUT /snapshot/load`, with
//! Firecracker's field names (both the `mem_backend` form and the older
//! `mem_file_path` for load).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `snapshot_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SnapshotType {
    /// Guest memory and state: what vessel writes.
    #[default]
    Full,
    /// Only pages dirtied since the last snapshot (not supported).
    Diff,
}

/// `PUT /snapshot/create`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotParams {
    /// Full (the default) or Diff.
    #[serde(default)]
    pub snapshot_type: SnapshotType,
    /// Where the state file goes.
    pub snapshot_path: PathBuf,
    /// Where guest memory goes.
    pub mem_file_path: PathBuf,
}

impl CreateSnapshotParams {
    /// Refuses what vessel does not do, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.snapshot_type == SnapshotType::Diff {
            return Err(
                "Invalid `snapshot_type`: Diff snapshots are not supported by vessel yet, use Full."
                    .into(),
            );
        }
        for (field, path) in [
            ("snapshot_path", &self.snapshot_path),
            ("mem_file_path", &self.mem_file_path),
        ] {
            if path.as_os_str().is_empty() {
                return Err(format!("Invalid `{field}`: empty path."));
            }
        }
        Ok(())
    }
}

/// `mem_backend.backend_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MemBackendType {
    /// A memory file, mapped privately.
    File,
    /// A userfaultfd handler (not supported).
    Uffd,
}

/// `mem_backend`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemBackend {
    /// File or Uffd.
    pub backend_type: MemBackendType,
    /// The memory file (or the handler's socket for Uffd).
    pub backend_path: PathBuf,
}

/// `PUT /snapshot/load`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSnapshotParams {
    /// The state file.
    pub snapshot_path: PathBuf,
    /// Where guest memory comes from.
    pub mem_backend: Option<MemBackend>,
    /// Firecracker's older form of `mem_backend` for a file.
    pub mem_file_path: Option<PathBuf>,
    /// Accepted for compatibility; without diff snapshots it changes nothing.
    #[serde(default)]
    pub enable_diff_snapshots: bool,
    /// Accepted for compatibility; without diff snapshots it changes nothing.
    #[serde(default)]
    pub track_dirty_pages: bool,
    /// Run the guest at once (otherwise it stays paused).
    #[serde(default)]
    pub resume_vm: bool,
}

impl LoadSnapshotParams {
    /// The memory file: exactly one of `mem_backend` (of type File) and
    /// `mem_file_path`.
    pub fn mem_file(&self) -> Result<&Path, String> {
        let path = match (&self.mem_backend, &self.mem_file_path) {
            (Some(_), Some(_)) => {
                return Err("Give either `mem_backend` or `mem_file_path`, not both.".into())
            }
            (None, None) => {
                return Err("Missing `mem_backend` (or the older `mem_file_path`).".into())
            }
            (Some(b), None) if b.backend_type == MemBackendType::Uffd => return Err(
                "Invalid `mem_backend.backend_type`: Uffd is not supported by vessel, use File."
                    .into(),
            ),
            (Some(b), None) => &b.backend_path,
            (None, Some(p)) => p,
        };
        if path.as_os_str().is_empty() || self.snapshot_path.as_os_str().is_empty() {
            return Err("Invalid snapshot request: empty path.".into());
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> LoadSnapshotParams {
        serde_json::from_str(json).expect(json)
    }

    #[test]
    fn load_takes_either_memory_form_and_refuses_both_neither_or_uffd() {
        let p = load(
            r#"{"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}, "resume_vm": true}"#,
        );
        assert_eq!(p.mem_file(), Ok(Path::new("m")));
        assert!(p.resume_vm);
        let p = load(
            r#"{"snapshot_path": "s", "mem_file_path": "m2", "enable_diff_snapshots": false}"#,
        );
        assert_eq!(p.mem_file(), Ok(Path::new("m2")));
        assert!(!p.resume_vm);
        let both = load(
            r#"{"snapshot_path": "s", "mem_file_path": "m", "mem_backend": {"backend_type": "File", "backend_path": "m"}}"#,
        );
        assert!(both.mem_file().unwrap_err().contains("not both"));
        assert!(load(r#"{"snapshot_path": "s"}"#)
            .mem_file()
            .unwrap_err()
            .contains("Missing `mem_backend`"));
        let uffd = load(
            r#"{"snapshot_path": "s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/sock"}}"#,
        );
        assert!(uffd.mem_file().unwrap_err().contains("Uffd"));
        assert!(load(r#"{"snapshot_path": "", "mem_file_path": "m"}"#)
            .mem_file()
            .is_err());
    }

    #[test]
    fn create_defaults_to_full_and_refuses_diff() {
        let p: CreateSnapshotParams =
            serde_json::from_str(r#"{"snapshot_path": "s", "mem_file_path": "m"}"#).unwrap();
        assert_eq!(p.snapshot_type, SnapshotType::Full);
        assert!(p.check().is_ok());
        let d: CreateSnapshotParams = serde_json::from_str(
            r#"{"snapshot_type": "Diff", "snapshot_path": "s", "mem_file_path": "m"}"#,
        )
        .unwrap();
        assert!(d.check().unwrap_err().contains("Diff"));
        let e: CreateSnapshotParams =
            serde_json::from_str(r#"{"snapshot_path": "", "mem_file_path": "m"}"#).unwrap();
        assert!(e.check().unwrap_err().contains("snapshot_path"));
    }
}
