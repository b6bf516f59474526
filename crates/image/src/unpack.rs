//! Unpacking an image's layers into committed snapshots, once per layer.
//!
//! Layer N is applied onto an overlayfs mount of layers 0..N-1 with a fresh
//! upper directory (as containerd does), so whiteouts, opaque directories and
//! hard links to lower files get overlayfs's own semantics; the upper then
//! becomes `snapshots/<chain id hex>/fs`. The first layer is applied into
//! its directory directly. A layer whose chain ID is already committed is
//! not unpacked again; two processes racing on one layer both succeed (the
//! loser's copy is dropped).

use oci_spec::image::{ImageConfiguration, ImageManifest};
use sha2::{Digest as _, Sha256};

use crate::apply::{apply_layer, decompress_in_background, ApplyError, ApplyOptions};
use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, DigestError};
use crate::fsutil::unique_name;
use crate::manifest::descriptor_digest;
use crate::mount::{mount_all, unmount, MountError};
use crate::snapshot::{SnapshotError, Snapshotter};

/// Failures of unpacking.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The config's diff IDs do not match the manifest's layers.
    #[error("Image has {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// A digest in the manifest or config is unusable.
    #[error("Image has an invalid digest")]
    Digest(#[source] DigestError),
    /// A manifest descriptor is unusable.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// A layer blob is missing or unreadable.
    #[error("Layer {0} is unavailable")]
    Content(Digest, #[source] ContentError),
    /// A layer could not be applied.
    #[error("Cannot apply layer {0}")]
    Apply(Digest, #[source] ApplyError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Mounting the lower layers failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// Creating the temporary mount point failed.
    #[error("Cannot create mount point {0}")]
    MountPoint(std::path::PathBuf, #[source] std::io::Error),
}

/// Chain IDs of a stack of diff IDs: chain(L0) = diff(L0), chain(Ln) =
/// sha256(chain(Ln-1) + " " + diff(Ln)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::from_hasher(Sha256::new_with_prefix(format!("{prev} {d}"))),
        };
        out.push(next);
    }
    out
}

/// Unpack every layer of the image into committed snapshots; returns the
/// name of the top one (`None` for an image without layers). Needs root.
pub fn unpack(
    content: &ContentStore,
    snapshots: &Snapshotter,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Option<String>, UnpackError> {
    let diff_ids = crate::manifest::diff_ids(config).map_err(UnpackError::Digest)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(UnpackError::LayerCount {
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chains = chain_ids(&diff_ids);
    let mut parent: Option<String> = None;
    for ((layer, diff_id), chain) in manifest.layers().iter().zip(&diff_ids).zip(&chains) {
        let name = chain.hex().to_string();
        if !snapshots.exists(&name) {
            let blob = descriptor_digest(layer)?;
            unpack_one(content, snapshots, &blob, diff_id, &name, parent.as_deref())?;
        }
        parent = Some(name);
    }
    Ok(parent)
}

fn unpack_one(
    content: &ContentStore,
    snapshots: &Snapshotter,
    blob: &Digest,
    diff_id: &Digest,
    name: &str,
    parent: Option<&str>,
) -> Result<(), UnpackError> {
    let key = unique_name("extract");
    let mounts = snapshots.prepare(&key, parent)?;
    let result = (|| {
        let file = content
            .open_blob(blob)
            .map_err(|e| UnpackError::Content(blob.clone(), e))?;
        let opts = ApplyOptions {
            same_owner: true,
            expected_diff_id: Some(diff_id.clone()),
        };
        let apply = |target: &std::path::Path| {
            apply_layer(decompress_in_background(file), target, &opts)
                .map(|_| ())
                .map_err(|e| UnpackError::Apply(blob.clone(), e))
        };
        match parent {
            None => apply(&snapshots.upper_dir(&key)),
            Some(_) => {
                let target = snapshots.upper_dir(&key).with_file_name("merged");
                std::fs::create_dir(&target)
                    .map_err(|e| UnpackError::MountPoint(target.clone(), e))?;
                mount_all(&mounts, &target)?;
                let applied = apply(&target);
                let unmounted = unmount(&target);
                let _ = std::fs::remove_dir(&target);
                applied?;
                unmounted?;
                Ok(())
            }
        }
    })();
    match result {
        Ok(()) => match snapshots.commit(name, &key) {
            Ok(()) => Ok(()),
            // Another process committed the same layer meanwhile: use theirs.
            Err(SnapshotError::AlreadyExists(_)) => {
                snapshots.remove(&key)?;
                Ok(())
            }
            Err(e) => {
                let _ = snapshots.remove(&key);
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = snapshots.remove(&key);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
