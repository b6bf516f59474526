//! A container's files as a whole: `vessel diff` (what changed against its
//! image) and `vessel export` (its root filesystem as a tar).

use std::io::Write;
use std::path::PathBuf;

use vessel_image::diff::{changes, Change};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::rootfs;

impl Engine {
    /// `vessel diff`: the paths the container added (A), changed (C) or
    /// deleted (D) against its image, parents first.
    pub fn diff(&self, container: &str) -> Result<Vec<Change>> {
        let id = self.containers().resolve(container)?;
        let snaps = self.images().snapshots();
        let snap_err = |source| EngineError::Snapshot {
            id: id.clone(),
            source,
        };
        let lowers: Vec<PathBuf> = match snaps.parent_of_active(&id).map_err(snap_err)? {
            Some(parent) => snaps
                .chain(&parent)
                .map_err(snap_err)?
                .iter()
                .map(|n| snaps.fs_dir(n))
                .collect(),
            None => Vec::new(),
        };
        changes(&snaps.upper_dir(&id), &lowers).map_err(|source| EngineError::Diff {
            id: id.clone(),
            source,
        })
    }

    /// `vessel export`: the container's root filesystem (image and writable
    /// layer merged) as an uncompressed tar written to `out`. Symlinks are
    /// stored as symlinks, never followed.
    pub fn export(&self, container: &str, out: impl Write) -> Result<()> {
        let id = self.containers().resolve(container)?;
        let root = self.containers().rootfs(&id);
        rootfs::ensure_mounted(self.images(), &id, &root)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        let io = |e| EngineError::io("cannot export", &root)(e);
        tar.append_dir_all(".", &root).map_err(io)?;
        tar.into_inner().and_then(|mut w| w.flush()).map_err(io)
    }
}
