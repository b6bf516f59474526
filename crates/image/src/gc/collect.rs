//! The collector: mark from the roots, sweep blobs and committed snapshots.
//!
//! The whole collection holds `gc.lock` exclusively. Writers take it shared
//! around the moments that matter (creating an ingest or a lease, and
//! "add to the lease, then make visible or find present" in a commit), so
//! every blob is either leased or tagged, or was written after the
//! collection ended. Snapshots are listed before the roots are read, so a
//! layer committed during the collection is never a candidate; a committed
//! snapshot that a container or a layer being unpacked is built on is
//! refused by the snapshotter's own parent check. A root that cannot be read
//! (a corrupt manifest or config) stops the collection before anything is
//! removed: what it reaches is unknown.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;

use super::GcError;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::fsutil::{dir_size, is_held, FileLock};
use crate::manifest::{self, Kind, MAX_JSON_BLOB};
use crate::snapshot::SnapshotError;
use crate::store::ImageStore;

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs removed.
    pub blobs: Vec<Digest>,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Committed snapshots (unpacked layers) removed, by name.
    pub snapshots: Vec<String>,
    /// Their bytes (apparent size of the files).
    pub snapshot_bytes: u64,
    /// Dead leases, dead ingests and temporary files of killed processes.
    pub debris: usize,
}

impl Collected {
    /// Bytes freed.
    pub fn bytes(&self) -> u64 {
        self.blob_bytes + self.snapshot_bytes
    }
}

/// What the roots reach.
#[derive(Default)]
pub(crate) struct Marks {
    pub(crate) blobs: HashSet<Digest>,
    pub(crate) configs: HashSet<Digest>,
    /// Chain IDs' hex: the names of the layers' snapshots.
    pub(crate) chains: HashSet<String>,
}

/// Collect garbage in `store`. `in_use` are the image IDs (config digests)
/// containers use: their images are kept even if nothing names them.
pub fn collect(store: &ImageStore, in_use: &BTreeSet<Digest>) -> Result<Collected, GcError> {
    let content = store.content();
    let lock_path = content.gc_lock_path();
    let _gc = FileLock::exclusive(&lock_path).map_err(|source| GcError::Store {
        op: "lock",
        path: lock_path.clone(),
        source,
    })?;
    let mut out = Collected::default();
    // Candidates first, roots after: whatever appears later is not swept.
    let snapshots = store.snapshots().list_committed()?;
    let blobs = content.list()?;
    out.debris += remove_dead(&store.root().join("leases"))?;
    out.debris += remove_dead(&content.ingest_dir())?;
    out.debris += store.tags().remove_debris()?;
    out.debris += store.snapshots().remove_debris()?;

    let roots = super::roots(store.tags(), &store.root().join("leases"), Vec::new())?;
    let mut marks = Marks::default();
    for d in &roots.tagged {
        mark_target(content, d, &mut marks, 0)?;
    }
    marks.blobs.extend(roots.leased);
    let missing: BTreeSet<&Digest> = in_use
        .iter()
        .filter(|c| !marks.configs.contains(*c))
        .collect();
    if !missing.is_empty() {
        mark_manifests_of(content, &blobs, &missing, &mut marks)?;
    }

    for d in blobs {
        if marks.blobs.contains(&d) {
            continue;
        }
        let size = content.size(&d).unwrap_or(0);
        content.delete(&d)?;
        out.blob_bytes += size;
        out.blobs.push(d);
    }
    sweep_snapshots(store, snapshots, &marks.chains, &mut out)?;
    Ok(out)
}

/// Undo the blobs of a failed operation: drop `lease`, then remove the blobs
/// it created unless something else (a name, an untagged image, another
/// live lease) reaches them by now. Leaves the store as it was before the
/// operation, as far as that operation is concerned. Returns how many
/// blobs were removed.
pub fn discard(store: &ImageStore, mut lease: super::Lease) -> Result<usize, GcError> {
    let created = std::mem::take(&mut lease.created);
    drop(lease);
    if created.is_empty() {
        return Ok(0);
    }
    let content = store.content();
    let lock_path = content.gc_lock_path();
    let _gc = FileLock::exclusive(&lock_path).map_err(|source| GcError::Store {
        op: "lock",
        path: lock_path.clone(),
        source,
    })?;
    // Every lease file counts here, dead or alive: this is not a collection.
    let roots = super::roots(store.tags(), &store.root().join("leases"), Vec::new())?;
    let mut marks = Marks::default();
    for d in &roots.tagged {
        mark_target(content, d, &mut marks, 0)?;
    }
    marks.blobs.extend(roots.leased);
    let mut n = 0;
    for d in created.iter().filter(|d| !marks.blobs.contains(*d)) {
        content.delete(d)?;
        n += 1;
    }
    Ok(n)
}

/// Mark a manifest or index and what it reaches.
pub(crate) fn mark_target(
    content: &ContentStore,
    digest: &Digest,
    marks: &mut Marks,
    depth: u32,
) -> Result<(), GcError> {
    if !marks.blobs.insert(digest.clone()) || !content.exists(digest) {
        return Ok(()); // Seen, or a name whose image is gone: nothing below.
    }
    let root_err = |e: manifest::ManifestError| GcError::Root(digest.clone(), Box::new(e));
    if content.size(digest)? > MAX_JSON_BLOB {
        return Ok(()); // Not a manifest or index.
    }
    let data = content
        .read_blob(digest, MAX_JSON_BLOB)
        .map_err(|e| root_err(e.into()))?;
    match manifest::sniff_kind(&data) {
        Kind::Index if depth < 4 => {
            let index = manifest::parse_index(digest, &data).map_err(root_err)?;
            for child in index.manifests() {
                let child = manifest::descriptor_digest(child).map_err(root_err)?;
                mark_target(content, &child, marks, depth + 1)?;
            }
        }
        Kind::Manifest => {
            let m = manifest::parse_manifest(digest, &data).map_err(root_err)?;
            mark_manifest(content, &m, marks).map_err(root_err)?;
        }
        _ => {}
    }
    Ok(())
}

fn mark_manifest(
    content: &ContentStore,
    m: &oci_spec::image::ImageManifest,
    marks: &mut Marks,
) -> Result<(), manifest::ManifestError> {
    let config = manifest::descriptor_digest(m.config())?;
    for l in m.layers() {
        marks.blobs.insert(manifest::descriptor_digest(l)?);
    }
    marks.blobs.insert(config.clone());
    if content.exists(&config) {
        let data = content.read_blob(&config, MAX_JSON_BLOB)?;
        let parsed = manifest::parse_config(&config, &data)?;
        let diff_ids = manifest::diff_ids(&parsed).map_err(manifest::ManifestError::Digest)?;
        for c in crate::unpack::chain_ids(&diff_ids) {
            marks.chains.insert(c.hex().to_string());
        }
        marks.configs.insert(config);
    }
    Ok(())
}

/// Images in use that no entry reaches (a container made from `name@digest`,
/// say): find their manifests among the blobs.
fn mark_manifests_of(
    content: &ContentStore,
    blobs: &[Digest],
    configs: &BTreeSet<&Digest>,
    marks: &mut Marks,
) -> Result<(), GcError> {
    for d in blobs {
        if marks.blobs.contains(d) || !looks_like_json(content, d) {
            continue;
        }
        let Ok(data) = content.read_blob(d, MAX_JSON_BLOB) else {
            continue;
        };
        if manifest::sniff_kind(&data) != Kind::Manifest {
            continue;
        }
        let Ok(m) = manifest::parse_manifest(d, &data) else {
            continue;
        };
        let wanted = manifest::descriptor_digest(m.config())
            .map(|c| configs.contains(&c))
            .unwrap_or(false);
        if wanted {
            marks.blobs.insert(d.clone());
            mark_manifest(content, &m, marks).map_err(|e| GcError::Root(d.clone(), Box::new(e)))?;
        }
    }
    Ok(())
}

/// A small blob whose first byte opens a JSON object.
pub(crate) fn looks_like_json(content: &ContentStore, d: &Digest) -> bool {
    use std::io::Read;
    if content.size(d).map_or(true, |s| s > MAX_JSON_BLOB) {
        return false;
    }
    let mut first = [0u8; 1];
    content
        .open_blob(d)
        .and_then(|mut f| {
            f.read_exact(&mut first)
                .map_err(|e| crate::content::ContentError::Io {
                    op: "read",
                    path: content.blob_path(d),
                    source: e,
                })
        })
        .is_ok()
        && first[0] == b'{'
}

/// Remove files under `dir` whose owner no longer holds their lock.
fn remove_dead(dir: &Path) -> Result<usize, GcError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(GcError::Store {
                op: "list",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if !is_held(&path).unwrap_or(true) && fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Remove unmarked committed snapshots, children before parents; those a
/// container or an unpack builds on stay.
fn sweep_snapshots(
    store: &ImageStore,
    candidates: Vec<String>,
    live: &HashSet<String>,
    out: &mut Collected,
) -> Result<(), GcError> {
    let snaps = store.snapshots();
    let mut left: Vec<String> = candidates
        .into_iter()
        .filter(|n| !live.contains(n))
        .collect();
    loop {
        let mut progress = false;
        let mut kept = Vec::new();
        for name in left {
            let size = dir_size(&snaps.fs_dir(&name));
            match snaps.remove(&name) {
                Ok(()) => {
                    out.snapshot_bytes += size;
                    out.snapshots.push(name);
                    progress = true;
                }
                Err(SnapshotError::InUse { .. }) => kept.push(name),
                Err(SnapshotError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        left = kept;
        if !progress || left.is_empty() {
            return Ok(());
        }
    }
}
