//! The image store: content, tags and snapshots under one root.
//!
//! ```text
//! <root>/oci-layout, index.json (tags), index.lock
//! <root>/blobs/sha256/<hex>      content
//! <root>/ingest/                 blobs being written
//! <root>/leases/                 GC roots of operations in progress
//! <root>/snapshots/<chain hex>/fs, snapshots/active/<key>/{fs,work}
//! ```

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::gc::{GcError, Lease, Roots};
use crate::manifest::{self, ManifestError, Platform};
use crate::reference::Reference;
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::tags::{TagError, TagStore, Target};
use crate::unpack::{self, UnpackError};

/// Failures of the store as a whole.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Content store failure.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Tag store failure.
    #[error(transparent)]
    Tags(#[from] TagError),
    /// Snapshotter failure.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Manifest failure.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Unpack failure.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// Lease failure.
    #[error(transparent)]
    Gc(#[from] GcError),
    /// No image by that name.
    #[error("No such image: {0}")]
    NotFound(String),
}

/// An image resolved to one platform's manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// What the name points at (a manifest or an index).
    pub target: Target,
    /// The platform's manifest.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config digest: docker's image ID.
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfiguration,
}

/// The image store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    tags: TagStore,
    snapshots: Snapshotter,
}

impl ImageStore {
    /// Open (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let content = ContentStore::open(&root)?;
        let tags = TagStore::new(&root);
        let snapshots = Snapshotter::open(root.join("snapshots"))?;
        Ok(ImageStore {
            root,
            content,
            tags,
            snapshots,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blobs.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The names.
    pub fn tags(&self) -> &TagStore {
        &self.tags
    }

    /// The snapshots.
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// A lease keeping blobs alive during an operation.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        Ok(Lease::new(&self.root.join("leases"))?)
    }

    /// What a garbage collector must keep.
    pub fn gc_roots(&self) -> Result<Roots, StoreError> {
        Ok(crate::gc::roots(
            &self.tags,
            &self.root.join("leases"),
            self.content.ingests()?,
        )?)
    }

    /// What `r` names: its tag, or for `name@digest` a present blob.
    pub fn target(&self, r: &Reference) -> Result<Target, StoreError> {
        if let Some(t) = self.tags.get(r)? {
            return Ok(t);
        }
        if let Some(d) = r.digest() {
            if self.content.exists(d) {
                let data = self.content.read_blob(d, manifest::MAX_JSON_BLOB)?;
                let media_type = match manifest::sniff_kind(&data) {
                    manifest::Kind::Index => manifest::OCI_INDEX,
                    _ => manifest::OCI_MANIFEST,
                };
                return Ok(Target {
                    media_type: media_type.into(),
                    digest: d.clone(),
                    size: data.len() as u64,
                });
            }
        }
        Err(StoreError::NotFound(r.familiar()))
    }

    /// Resolve `r` to the image for `platform`.
    pub fn image(&self, r: &Reference, platform: &Platform) -> Result<Image, StoreError> {
        let target = self.target(r)?;
        self.image_of(target, platform)
    }

    /// Resolve a target to the image for `platform`.
    pub fn image_of(&self, target: Target, platform: &Platform) -> Result<Image, StoreError> {
        let resolved = manifest::resolve(&self.content, &target.digest, platform)?;
        let config_digest = manifest::descriptor_digest(resolved.manifest.config())?;
        let data = self
            .content
            .read_blob(&config_digest, manifest::MAX_JSON_BLOB)?;
        let config = manifest::parse_config(&config_digest, &data)?;
        Ok(Image {
            target,
            manifest_digest: resolved.digest,
            manifest: resolved.manifest,
            config_digest,
            config,
        })
    }

    /// Unpack the image's layers into snapshots; the top snapshot's name
    /// (the parent for a container's `prepare`). Needs root.
    pub fn unpack(&self, image: &Image) -> Result<Option<String>, StoreError> {
        Ok(unpack::unpack(
            &self.content,
            &self.snapshots,
            &image.manifest,
            &image.config,
        )?)
    }
}
