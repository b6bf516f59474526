//! Disk usage (`system df`): images (their blobs), unpacked layers
//! (committed snapshots) and containers' writable layers, with what could
//! be reclaimed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::catalog::{list, CatalogError, ImageInfo};
use crate::digest::Digest;
use crate::fsutil::dir_size;
use crate::snapshot::SnapshotError;
use crate::store::ImageStore;

/// Failures of `disk_usage`.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// Listing images failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// One image's share of the disk.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    /// The image.
    pub image: ImageInfo,
    /// Containers using it.
    pub containers: usize,
    /// Bytes of its blobs that no other image has.
    pub unique: u64,
    /// Bytes of its blobs that other images share.
    pub shared: u64,
}

/// One unpacked layer.
#[derive(Debug, Clone)]
pub struct LayerUsage {
    /// Snapshot name (chain ID hex).
    pub name: String,
    /// Apparent size of its files.
    pub size: u64,
    /// Whether a container is built on it.
    pub in_use: bool,
}

/// One container's writable layer.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    /// Its snapshot key (the container ID).
    pub key: String,
    /// Apparent size of its files.
    pub size: u64,
}

/// The store's disk usage.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Images, as listed.
    pub images: Vec<ImageUsage>,
    /// Bytes of all images' blobs, each blob once.
    pub images_size: u64,
    /// Bytes of blobs that only unused images hold.
    pub images_reclaimable: u64,
    /// Unpacked layers.
    pub layers: Vec<LayerUsage>,
    /// Containers' writable layers.
    pub containers: Vec<ContainerUsage>,
}

/// Measure `store`. `users` maps image IDs to the containers using them;
/// `containers` are the containers' snapshot keys.
pub fn disk_usage(
    store: &ImageStore,
    users: &BTreeMap<Digest, Vec<String>>,
    containers: &[String],
) -> Result<DiskUsage, UsageError> {
    let (images, _) = list(store)?;
    let blob_size = |d: &Digest| store.content().size(d).unwrap_or(0);
    let blobs_of = |i: &ImageInfo| -> BTreeSet<Digest> {
        let mut b: BTreeSet<Digest> = i.layers().into_iter().collect();
        b.insert(i.id.clone());
        b
    };
    let mut holders: BTreeMap<Digest, usize> = BTreeMap::new();
    for i in &images {
        for b in blobs_of(i) {
            *holders.entry(b).or_default() += 1;
        }
    }
    let mut used_blobs = BTreeSet::new();
    for i in images.iter().filter(|i| users.contains_key(&i.id)) {
        used_blobs.extend(blobs_of(i));
    }
    let images_size = holders.keys().map(blob_size).sum();
    let images_reclaimable = holders
        .keys()
        .filter(|b| !used_blobs.contains(*b))
        .map(blob_size)
        .sum();
    let images = images
        .into_iter()
        .map(|image| {
            let (mut unique, mut shared) = (0, 0);
            for b in blobs_of(&image) {
                if holders.get(&b).copied().unwrap_or(0) > 1 {
                    shared += blob_size(&b);
                } else {
                    unique += blob_size(&b);
                }
            }
            ImageUsage {
                containers: users.get(&image.id).map_or(0, Vec::len),
                image,
                unique,
                shared,
            }
        })
        .collect();

    let snaps = store.snapshots();
    let mut in_use: HashSet<String> = HashSet::new();
    for key in containers {
        if let Ok(Some(parent)) = snaps.parent_of_active(key) {
            in_use.extend(snaps.chain(&parent).unwrap_or_default());
        }
    }
    let layers = snaps
        .list_committed()?
        .into_iter()
        .map(|name| LayerUsage {
            size: dir_size(&snaps.fs_dir(&name)),
            in_use: in_use.contains(&name),
            name,
        })
        .collect();
    let containers = containers
        .iter()
        .map(|key| ContainerUsage {
            key: key.clone(),
            size: if snaps.active_exists(key) {
                dir_size(&snaps.upper_dir(key))
            } else {
                0
            },
        })
        .collect();
    Ok(DiskUsage {
        images,
        images_size,
        images_reclaimable,
        layers,
        containers,
    })
}
