//! Images as users see them: one image per image ID (the config digest),
//! with every name that points at it, and lookup of what a user typed
//! (a name, or a full or abbreviated image ID, as docker resolves them).

use std::collections::BTreeMap;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::digest::Digest;
use crate::manifest::{descriptor_digest, Platform};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::tags::{key, TagError, Target};

/// Failures of listing and lookup.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Nothing by that name or ID.
    #[error("No such image: {0}")]
    NotFound(String),
    /// An ID prefix that matches several images.
    #[error("Image ID prefix {what:?} is ambiguous: it matches {}", ids.join(", "))]
    Ambiguous {
        /// What the user typed.
        what: String,
        /// The short IDs it matches.
        ids: Vec<String>,
    },
    /// The tag store failed.
    #[error(transparent)]
    Tags(#[from] TagError),
    /// An image could not be read.
    #[error("Image {name}")]
    Image {
        /// Its name or digest.
        name: String,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
}

/// One image: an image ID with its names and what it is made of.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The image ID: the config's digest.
    pub id: Digest,
    /// Its names, sorted (empty for an untagged image).
    pub names: Vec<Reference>,
    /// The manifests or indexes that entries of `index.json` point at.
    pub targets: Vec<Target>,
    /// The linux/amd64 manifest's digest (of the first target).
    pub manifest_digest: Digest,
    /// That manifest.
    pub manifest: ImageManifest,
    /// The config.
    pub config: ImageConfiguration,
    /// Bytes of the config and layer blobs as stored.
    pub size: u64,
}

impl ImageInfo {
    /// The config's `created`, if any.
    pub fn created(&self) -> Option<&str> {
        self.config.created().as_deref()
    }

    /// UNIX time of `created` (0 when absent or unreadable).
    pub fn created_unix(&self) -> i64 {
        self.created()
            .and_then(crate::time::parse_rfc3339)
            .unwrap_or(0)
    }

    /// Layer blob digests, bottom first.
    pub fn layers(&self) -> Vec<Digest> {
        self.manifest
            .layers()
            .iter()
            .filter_map(|l| descriptor_digest(l).ok())
            .collect()
    }
}

/// An entry of `index.json` that does not resolve to an image.
#[derive(Debug)]
pub struct Broken {
    /// Its name, if it has one.
    pub name: Option<String>,
    /// What it points at.
    pub target: Target,
    /// Why it does not resolve.
    pub error: StoreError,
}

/// Every image of the store, newest first, and the entries that are broken.
pub fn list(store: &ImageStore) -> Result<(Vec<ImageInfo>, Vec<Broken>), CatalogError> {
    let index = store.tags().index()?;
    let platform = Platform::linux_amd64();
    let mut by_id: BTreeMap<Digest, ImageInfo> = BTreeMap::new();
    let mut broken = Vec::new();
    let mut entries: Vec<(Option<&String>, &Target)> =
        index.names.iter().map(|(n, t)| (Some(n), t)).collect();
    entries.extend(index.untagged.iter().map(|t| (None, t)));
    for (name, target) in entries {
        let image = match store.image_of(target.clone(), &platform) {
            Ok(i) => i,
            Err(error) => {
                broken.push(Broken {
                    name: name.cloned(),
                    target: target.clone(),
                    error,
                });
                continue;
            }
        };
        let info = by_id
            .entry(image.config_digest.clone())
            .or_insert_with(|| ImageInfo {
                size: image_size(store, &image.manifest),
                id: image.config_digest.clone(),
                names: Vec::new(),
                targets: Vec::new(),
                manifest_digest: image.manifest_digest.clone(),
                manifest: image.manifest.clone(),
                config: image.config.clone(),
            });
        if let Some(r) = name.and_then(|n| Reference::parse(n).ok()) {
            info.names.push(r);
        }
        if !info.targets.iter().any(|t| t.digest == target.digest) {
            info.targets.push(target.clone());
        }
    }
    let mut out: Vec<ImageInfo> = by_id.into_values().collect();
    for i in &mut out {
        i.names.sort();
    }
    out.sort_by(|a, b| {
        b.created_unix()
            .cmp(&a.created_unix())
            .then(a.id.cmp(&b.id))
    });
    Ok((out, broken))
}

fn image_size(store: &ImageStore, m: &ImageManifest) -> u64 {
    let blob = |d: &oci_spec::image::Descriptor| {
        descriptor_digest(d)
            .ok()
            .and_then(|d| store.content().size(&d).ok())
            .unwrap_or(d.size())
    };
    blob(m.config()) + m.layers().iter().map(blob).sum::<u64>()
}

/// What a user's word named.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A name (`busybox`, `localhost/app:1`, `name@sha256:...`).
    Name(Reference, ImageInfo),
    /// An image ID or a unique prefix of one.
    Id(ImageInfo),
}

impl Lookup {
    /// The image.
    pub fn image(&self) -> &ImageInfo {
        match self {
            Lookup::Name(_, i) | Lookup::Id(i) => i,
        }
    }
}

/// Resolve `what` as docker does: a name first, then an image ID or a
/// unique prefix of one (with or without `sha256:`).
pub fn lookup(store: &ImageStore, what: &str) -> Result<Lookup, CatalogError> {
    let (images, _) = list(store)?;
    if let Ok(r) = Reference::parse(what) {
        let k = key(&r);
        if let Some(i) = images.iter().find(|i| i.names.iter().any(|n| key(n) == k)) {
            return Ok(Lookup::Name(r, i.clone()));
        }
        if let Some(d) = r.digest() {
            if let Some(i) = images
                .iter()
                .find(|i| i.targets.iter().any(|t| &t.digest == d) || &i.manifest_digest == d)
            {
                return Ok(Lookup::Name(r, i.clone()));
            }
        }
    }
    let prefix = what.strip_prefix("sha256:").unwrap_or(what);
    let is_hex = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        let found: Vec<&ImageInfo> = images
            .iter()
            .filter(|i| i.id.hex().starts_with(prefix))
            .collect();
        match found.as_slice() {
            [one] => return Ok(Lookup::Id((*one).clone())),
            [] => {}
            many => {
                return Err(CatalogError::Ambiguous {
                    what: what.to_string(),
                    ids: many.iter().map(|i| i.id.short().to_string()).collect(),
                })
            }
        }
    }
    Err(CatalogError::NotFound(what.to_string()))
}
