//! Saving images to an OCI archive.
//!
//! The archive is an OCI layout (`oci-layout`, `index.json` whose entries
//! carry the full name in `io.containerd.image.name` and the tag in
//! `org.opencontainers.image.ref.name`, `blobs/sha256/...`) plus docker's
//! `manifest.json`, so both `vessel load` and `docker load` read it.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::CONTAINERD_IMAGE_NAME;
use crate::digest::Digest;
use crate::manifest::{self, Kind, Platform};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::tags::REF_NAME;

/// Failures of `save`.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Writing the archive failed.
    #[error("Cannot write the archive")]
    Write(#[source] io::Error),
    /// An image or blob is missing or malformed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Write the images named by `refs` as an OCI archive to `out`.
pub fn save<W: Write>(store: &ImageStore, refs: &[Reference], out: W) -> Result<(), SaveError> {
    let platform = Platform::linux_amd64();
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for r in refs {
        let target = store.target(r)?;
        let image = store.image_of(target.clone(), &platform)?;
        // The target and, for an index, the children that are present.
        blobs.insert(target.digest.clone());
        if target.digest != image.manifest_digest {
            let data = store
                .content()
                .read_blob(&target.digest, manifest::MAX_JSON_BLOB)
                .map_err(StoreError::from)?;
            if manifest::sniff_kind(&data) == Kind::Index {
                let idx = manifest::parse_index(&target.digest, &data).map_err(StoreError::from)?;
                for d in idx.manifests() {
                    if let Ok(d) = manifest::descriptor_digest(d) {
                        if store.content().exists(&d) {
                            blobs.insert(d);
                        }
                    }
                }
            }
        }
        blobs.insert(image.manifest_digest.clone());
        blobs.insert(image.config_digest.clone());
        let mut layers = Vec::new();
        for l in image.manifest.layers() {
            let d = manifest::descriptor_digest(l).map_err(StoreError::from)?;
            layers.push(format!("blobs/sha256/{}", d.hex()));
            blobs.insert(d);
        }
        let mut annotations = serde_json::Map::new();
        annotations.insert(CONTAINERD_IMAGE_NAME.into(), r.to_string().into());
        if let Some(t) = r.tag() {
            annotations.insert(REF_NAME.into(), t.into());
        }
        index.push(serde_json::json!({
            "mediaType": target.media_type,
            "digest": target.digest,
            "size": target.size,
            "annotations": annotations,
        }));
        docker.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", image.config_digest.hex()),
            "RepoTags": r.tag().map(|_| vec![r.familiar()]).unwrap_or_default(),
            "Layers": layers,
        }));
    }
    let mut b = tar::Builder::new(out);
    let mut add = |path: &str, size: u64, data: &mut dyn io::Read| -> Result<(), SaveError> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data).map_err(SaveError::Write)
    };
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    add("oci-layout", layout.len() as u64, &mut &layout[..])?;
    for d in &blobs {
        let size = store.content().size(d).map_err(StoreError::from)?;
        let mut f = store.content().open_blob(d).map_err(StoreError::from)?;
        add(&format!("blobs/sha256/{}", d.hex()), size, &mut f)?;
    }
    let idx = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": index,
    }))
    .expect("index serializes");
    add("index.json", idx.len() as u64, &mut idx.as_slice())?;
    let man = serde_json::to_vec(&docker).expect("manifest.json serializes");
    add("manifest.json", man.len() as u64, &mut man.as_slice())?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(SaveError::Write)
}
