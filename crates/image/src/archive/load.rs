//! Loading an archive into the store.
//!
//! The archive is read once, front to back: every regular file goes into the
//! content store (files under `blobs/sha256/` must hash to their name),
//! small JSON files are also kept in memory. Then the archive's own index
//! (`index.json` of an OCI layout, else docker's `manifest.json`) is checked
//! — every blob present, each layer's uncompressed digest equal to the
//! config's diff ID — and only then are all tags written, in one atomic
//! update. A failure at any point leaves the tags as they were, and the
//! blobs this load created are taken back (`gc::discard`); a load killed
//! midway leaves only unreachable blobs and a dead lease for the collector.

use std::collections::HashMap;
use std::io::{self, Read};

use oci_spec::image::ImageManifest;
use serde::Deserialize;

use super::CONTAINERD_IMAGE_NAME;
use crate::apply::{decompress, diff_id, Compression};
use crate::content::ContentError;
use crate::digest::Digest;
use crate::manifest::{self, ManifestError, Platform};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::tags::{key, Target, REF_NAME};

/// Failures of `load`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The archive cannot be read (truncated, corrupt).
    #[error("Archive is unreadable")]
    Read(#[source] io::Error),
    /// Storing a blob failed (a blob whose content does not match its name included).
    #[error("Archive entry {path}")]
    Blob {
        /// The entry.
        path: String,
        /// Why.
        #[source]
        source: ContentError,
    },
    /// The archive ends in the middle of an entry.
    #[error("Archive is truncated: entry {path} has {actual} of its {expected} bytes")]
    Truncated {
        /// The entry.
        path: String,
        /// Its size per its header.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// Neither `index.json` (with `oci-layout`) nor `manifest.json`.
    #[error("Not an image archive: no index.json or manifest.json")]
    NotAnArchive,
    /// A JSON file of the archive does not parse.
    #[error("Archive file {path} does not parse")]
    Json {
        /// The file.
        path: String,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// A file the archive's index refers to is not in the archive.
    #[error("Archive refers to {0}, which it does not contain")]
    Missing(String),
    /// A layer's uncompressed digest is not the config's diff ID.
    #[error("Layer {layer} has diff ID {actual}, but the config says {expected}")]
    DiffId {
        /// The layer blob.
        layer: Digest,
        /// From the config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// Layer and diff ID counts differ.
    #[error("Image {0} has {1} layers but its config lists {2} diff IDs")]
    LayerCount(Digest, usize, usize),
    /// A name in the archive is not a valid reference.
    #[error("Archive names an invalid image reference")]
    Reference(#[source] crate::reference::ReferenceError),
    /// A manifest, index or config is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An image that was loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its names (none for an untagged image).
    pub names: Vec<Reference>,
    /// What the names point at.
    pub target: Target,
    /// The config digest (image ID) of the platform's manifest.
    pub config: Digest,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

struct Scanned {
    /// Archive path -> blob digest and size.
    files: HashMap<String, (Digest, u64)>,
    /// Small JSON files.
    json: HashMap<String, Vec<u8>>,
}

const MAX_JSON: u64 = 8 << 20;

/// Load a `docker save` archive or an OCI archive (optionally gzip/zstd
/// compressed) into `store`; returns what was loaded.
pub fn load<R: Read>(store: &ImageStore, reader: R) -> Result<Vec<Loaded>, LoadError> {
    let mut lease = store.lease()?;
    match load_leased(store, reader, &mut lease) {
        Ok(loaded) => {
            // The tags hold the images now. What nothing reaches — the
            // archive's own manifest.json, repositories, index.json — goes.
            let _ = crate::gc::discard(store, lease);
            Ok(loaded)
        }
        Err(e) => {
            // Take back the blobs this load added: the store is as before.
            // If that fails they are garbage for the next collection.
            let _ = crate::gc::discard(store, lease);
            Err(e)
        }
    }
}

fn load_leased<R: Read>(
    store: &ImageStore,
    reader: R,
    lease: &mut crate::gc::Lease,
) -> Result<Vec<Loaded>, LoadError> {
    let scanned = scan(store, reader, lease)?;
    let platform = Platform::linux_amd64();
    let loaded =
        if scanned.json.contains_key("index.json") && scanned.files.contains_key("oci-layout") {
            load_oci(store, &scanned, &platform)?
        } else if scanned.json.contains_key("manifest.json") {
            load_docker(store, &scanned, lease)?
        } else {
            return Err(LoadError::NotAnArchive);
        };
    store
        .tags()
        .update_index(|index| {
            for l in &loaded {
                for n in &l.names {
                    // As docker: an image whose name moves here stays, untagged.
                    index.retarget(key(n), l.target.clone());
                }
                if l.names.is_empty() {
                    index.add_untagged(l.target.clone());
                }
            }
            Ok(())
        })
        .map_err(StoreError::from)?;
    Ok(loaded)
}

fn scan<R: Read>(
    store: &ImageStore,
    reader: R,
    lease: &mut crate::gc::Lease,
) -> Result<Scanned, LoadError> {
    let mut archive = tar::Archive::new(decompress(reader).map_err(LoadError::Read)?);
    let mut files = HashMap::new();
    let mut json = HashMap::new();
    let mut links = Vec::new();
    for entry in archive.entries().map_err(LoadError::Read)? {
        let mut entry = entry.map_err(LoadError::Read)?;
        let path = normalize(&entry.path_bytes());
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                // Old docker archives link duplicate layers to the first copy.
                if let Some(t) = entry.link_name_bytes() {
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                        resolve_relative(&path, &t)
                    } else {
                        normalize(t.as_bytes())
                    };
                    links.push((path, target));
                }
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => continue,
        }
        let size = entry.header().size().map_err(LoadError::Read)?;
        let expected = path
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok());
        let keep_json = size <= MAX_JSON
            && (path.ends_with(".json") || path == "oci-layout" || path == "repositories");
        let mut w = store.content().writer().map_err(|source| LoadError::Blob {
            path: path.clone(),
            source,
        })?;
        if keep_json {
            let mut data = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut data).map_err(LoadError::Read)?;
            io::Write::write_all(&mut w, &data).map_err(LoadError::Read)?;
            json.insert(path.clone(), data);
        } else {
            io::copy(&mut entry, &mut w).map_err(LoadError::Read)?;
        }
        if w.written() != size {
            return Err(LoadError::Truncated {
                path,
                expected: size,
                actual: w.written(),
            });
        }
        let digest = w
            .commit_leased(Some(size), expected.as_ref(), lease)
            .map_err(|source| LoadError::Blob {
                path: path.clone(),
                source,
            })?;
        files.insert(path, (digest, size));
    }
    for (from, to) in links {
        if let Some(v) = files.get(&to).cloned() {
            files.insert(from, v);
        }
    }
    Ok(Scanned { files, json })
}

fn normalize(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let parts: Vec<&str> = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn resolve_relative(from: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = from.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &Scanned, path: &str) -> Result<T, LoadError> {
    let data = s
        .json
        .get(path)
        .ok_or_else(|| LoadError::Missing(path.to_string()))?;
    serde_json::from_slice(data).map_err(|source| LoadError::Json {
        path: path.to_string(),
        source,
    })
}

fn load_docker(
    store: &ImageStore,
    s: &Scanned,
    lease: &mut crate::gc::Lease,
) -> Result<Vec<Loaded>, LoadError> {
    let entries: Vec<DockerEntry> = parse_json(s, "manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let (config_digest, config_size) = s
            .files
            .get(&normalize(e.config.as_bytes()))
            .cloned()
            .ok_or_else(|| LoadError::Missing(e.config.clone()))?;
        let config_data = store
            .content()
            .read_blob(&config_digest, MAX_JSON)
            .map_err(StoreError::from)?;
        let config = manifest::parse_config(&config_digest, &config_data)?;
        let diff_ids = manifest::diff_ids(&config)
            .map_err(|e| LoadError::Manifest(ManifestError::Digest(e)))?;
        if diff_ids.len() != e.layers.len() {
            return Err(LoadError::LayerCount(
                config_digest,
                e.layers.len(),
                diff_ids.len(),
            ));
        }
        let mut layers = Vec::new();
        for (path, expected) in e.layers.iter().zip(&diff_ids) {
            let (digest, size) = s
                .files
                .get(&normalize(path.as_bytes()))
                .cloned()
                .ok_or_else(|| LoadError::Missing(path.clone()))?;
            let compression = verify_layer(store, &digest, expected)?;
            let media_type = match compression {
                Compression::None => manifest::OCI_LAYER,
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            layers
                .push(serde_json::json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let data = serde_json::to_vec(&manifest).expect("manifest serializes");
        let digest = store
            .content()
            .write_blob_leased(&data, lease)
            .map_err(StoreError::from)?;
        let names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t).map_err(LoadError::Reference))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Loaded {
            names,
            target: Target {
                media_type: manifest::OCI_MANIFEST.into(),
                digest,
                size: data.len() as u64,
            },
            config: config_digest,
        });
    }
    Ok(out)
}

/// Check that a layer blob's uncompressed stream hashes to `expected`.
fn verify_layer(
    store: &ImageStore,
    blob: &Digest,
    expected: &Digest,
) -> Result<Compression, LoadError> {
    let mut file = store.content().open_blob(blob).map_err(StoreError::from)?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(LoadError::Read)?;
    let compression = Compression::detect(&head[..n]);
    if compression == Compression::None && blob == expected {
        return Ok(compression);
    }
    let file = store.content().open_blob(blob).map_err(StoreError::from)?;
    let actual = diff_id(io::BufReader::new(file)).map_err(LoadError::Read)?;
    if &actual != expected {
        return Err(LoadError::DiffId {
            layer: blob.clone(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(compression)
}

fn load_oci(
    store: &ImageStore,
    s: &Scanned,
    platform: &Platform,
) -> Result<Vec<Loaded>, LoadError> {
    let index: oci_spec::image::ImageIndex = parse_json(s, "index.json")?;
    let mut out = Vec::new();
    for d in index.manifests() {
        let digest = manifest::descriptor_digest(d)?;
        if !store.content().exists(&digest) {
            return Err(LoadError::Missing(format!("blobs/sha256/{}", digest.hex())));
        }
        let target = Target {
            media_type: d.media_type().to_string(),
            digest,
            size: d.size(),
        };
        let image = store.image_of(target.clone(), platform)?;
        check_image(store, &image.manifest, &image.config_digest, &image.config)?;
        let annotations = d.annotations().clone().unwrap_or_default();
        let name = annotations
            .get(CONTAINERD_IMAGE_NAME)
            .or_else(|| annotations.get(REF_NAME).filter(|n| n.contains(['/', ':'])));
        let names = match name {
            Some(n) => vec![Reference::parse(n).map_err(LoadError::Reference)?],
            None => Vec::new(),
        };
        out.push(Loaded {
            names,
            target,
            config: image.config_digest,
        });
    }
    Ok(out)
}

fn check_image(
    store: &ImageStore,
    m: &ImageManifest,
    config_digest: &Digest,
    config: &oci_spec::image::ImageConfiguration,
) -> Result<(), LoadError> {
    let diff_ids =
        manifest::diff_ids(config).map_err(|e| LoadError::Manifest(ManifestError::Digest(e)))?;
    if diff_ids.len() != m.layers().len() {
        return Err(LoadError::LayerCount(
            config_digest.clone(),
            m.layers().len(),
            diff_ids.len(),
        ));
    }
    for (layer, expected) in m.layers().iter().zip(&diff_ids) {
        let digest = manifest::descriptor_digest(layer)?;
        if !store.content().exists(&digest) {
            return Err(LoadError::Missing(format!("blobs/sha256/{}", digest.hex())));
        }
        verify_layer(store, &digest, expected)?;
    }
    Ok(())
}
