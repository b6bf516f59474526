//! Mounting a stage's image for COPY/ADD: a writable snapshot on its top
//! layer (to apply the copied files and take the diff), or a read-only view
//! (to copy from with `--from`).
//!
//! Snapshots are named `extract-<pid>-build…` and mounted at their
//! `merged/` directory, as the image store's own unpacking does, so the
//! collector treats those of a killed build as debris (unmounts, removes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vessel_image::gc::Lease;
use vessel_image::manifest::Platform;
use vessel_image::mount::{mount_all, unmount};
use vessel_image::ImageStore;

use crate::error::BuildError;
use crate::state::State;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A mounted snapshot; unmounted and removed on drop.
#[derive(Debug)]
pub struct Mounted<'a> {
    store: &'a ImageStore,
    key: String,
    merged: PathBuf,
    mounted: bool,
}

fn store_err<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
) -> impl FnOnce(E) -> BuildError + '_ {
    move |e| BuildError::store(what)(Box::new(e))
}

impl<'a> Mounted<'a> {
    /// Mount `state` writable (`view` false) or read-only.
    pub fn new(
        store: &'a ImageStore,
        state: &State,
        lease: &mut Lease,
        view: bool,
    ) -> Result<Mounted<'a>, BuildError> {
        let target = state.write(store, lease)?;
        let image = store
            .image_of(target, &Platform::linux_amd64())
            .map_err(store_err("read the stage's image"))?;
        let top = store
            .unpack(&image)
            .map_err(store_err("unpack the stage's layers"))?;
        let key = format!(
            "extract-{}-build{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let snaps = store.snapshots();
        let mounts = if view {
            snaps.view(&key, top.as_deref())
        } else {
            snaps.prepare(&key, top.as_deref())
        }
        .map_err(store_err("prepare a snapshot"))?;
        let merged = snaps.upper_dir(&key).with_file_name("merged");
        let mut m = Mounted {
            store,
            key,
            merged,
            mounted: false,
        };
        std::fs::create_dir(&m.merged).map_err(BuildError::io("create", &m.merged))?;
        mount_all(&mounts, &m.merged).map_err(store_err("mount the stage's root"))?;
        m.mounted = true;
        Ok(m)
    }

    /// The mounted root.
    pub fn root(&self) -> &Path {
        &self.merged
    }

    /// A scratch file beside the snapshot (removed with it).
    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.merged.with_file_name(name)
    }

    /// Unmount; the upper directory holding the changes.
    pub fn finish(&mut self) -> Result<PathBuf, BuildError> {
        if self.mounted {
            unmount(&self.merged).map_err(store_err("unmount the stage's root"))?;
            self.mounted = false;
        }
        Ok(self.store.snapshots().upper_dir(&self.key))
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.merged);
        }
        let _ = self.store.snapshots().remove(&self.key);
    }
}
