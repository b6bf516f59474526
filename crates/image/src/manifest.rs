//! OCI and Docker v2 schema 2 manifests, indexes and configs.
//!
//! Both formats share one JSON shape, so both parse into `oci-spec`'s types;
//! the media type says which one a blob is. Indexes (and Docker manifest
//! lists) are resolved to the manifest for one platform.

use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os,
};

use crate::digest::{Digest, DigestError};

/// Docker v2 schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (as `docker save` archives hold them).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Largest manifest, index or config read into memory.
pub const MAX_JSON_BLOB: u64 = 8 << 20;

/// Failures reading manifests, indexes and configs.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A JSON blob does not parse as what its media type says.
    #[error("{what} {digest} does not parse")]
    Parse {
        /// manifest, index or config.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The parser's reason.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// A descriptor carries a digest vessel cannot use.
    #[error("Descriptor has an invalid digest")]
    Digest(#[source] DigestError),
    /// A media type that is neither a manifest nor an index.
    #[error("Unsupported media type {0:?} (expected an OCI or Docker v2 manifest or index)")]
    MediaType(String),
    /// No manifest of the index is for the wanted platform.
    #[error("Index {digest} has no manifest for {platform}")]
    NoPlatform {
        /// The index.
        digest: Digest,
        /// The platform asked for.
        platform: Platform,
    },
    /// Reading a blob failed.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    /// Indexes nested deeper than vessel follows.
    #[error("Index {0} nests indexes too deeply")]
    TooDeep(Digest),
}

/// What kind of thing a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest (OCI or Docker v2).
    Manifest,
    /// An index or manifest list.
    Index,
    /// An image config.
    Config,
    /// A layer.
    Layer,
    /// Anything else.
    Other,
}

/// Classify a media type string, OCI or Docker.
pub fn kind_of(media_type: &str) -> Kind {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        m if m.starts_with("application/vnd.oci.image.layer.")
            || m.starts_with("application/vnd.docker.image.rootfs.") =>
        {
            Kind::Layer
        }
        _ => Kind::Other,
    }
}

/// The kind of a JSON blob whose descriptor may lack a media type: its own
/// `mediaType` field, else "has `manifests`" means an index.
pub fn sniff_kind(data: &[u8]) -> Kind {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(data) {
        Ok(p) => match p.media_type.as_deref().map(kind_of) {
            Some(k @ (Kind::Manifest | Kind::Index)) => k,
            _ if p.manifests.is_some() => Kind::Index,
            _ if p.layers.is_some() => Kind::Manifest,
            _ => Kind::Other,
        },
        Err(_) => Kind::Other,
    }
}

/// A platform to resolve indexes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, ... (optional).
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64, what vessel runs.
    pub fn linux_amd64() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        let os = match p.os() {
            Os::Linux => "linux".to_string(),
            other => other.to_string(),
        };
        let arch = match p.architecture() {
            Arch::Amd64 => "amd64".to_string(),
            other => other.to_string(),
        };
        os == self.os
            && arch == self.architecture
            && (self.variant.is_none() || p.variant() == &self.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The validated digest of a descriptor.
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, ManifestError> {
    Digest::try_from(d.digest()).map_err(ManifestError::Digest)
}

/// A descriptor's media type as a string.
pub fn media_type_str(m: &MediaType) -> String {
    m.to_string()
}

/// Parse an image manifest (OCI or Docker v2).
pub fn parse_manifest(digest: &Digest, data: &[u8]) -> Result<ImageManifest, ManifestError> {
    ImageManifest::from_reader(data).map_err(|source| ManifestError::Parse {
        what: "Manifest",
        digest: digest.clone(),
        source,
    })
}

/// Parse an index or Docker manifest list.
pub fn parse_index(digest: &Digest, data: &[u8]) -> Result<ImageIndex, ManifestError> {
    ImageIndex::from_reader(data).map_err(|source| ManifestError::Parse {
        what: "Index",
        digest: digest.clone(),
        source,
    })
}

/// Parse an image config (OCI or Docker).
pub fn parse_config(digest: &Digest, data: &[u8]) -> Result<ImageConfiguration, ManifestError> {
    ImageConfiguration::from_reader(data).map_err(|source| ManifestError::Parse {
        what: "Config",
        digest: digest.clone(),
        source,
    })
}

/// An image manifest found for a platform, with its digest.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// Digest of the manifest blob.
    pub digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
}

/// Follow `digest` (a manifest or an index) in `store` to the image
/// manifest for `platform`. Indexes may nest (up to 4 levels).
pub fn resolve(
    store: &crate::content::ContentStore,
    digest: &Digest,
    platform: &Platform,
) -> Result<ResolvedManifest, ManifestError> {
    let mut current = digest.clone();
    for _ in 0..4 {
        let data = store.read_blob(&current, MAX_JSON_BLOB)?;
        match sniff_kind(&data) {
            Kind::Index => {
                let index = parse_index(&current, &data)?;
                current = pick_platform(&current, &index, platform)?;
            }
            Kind::Manifest => {
                let manifest = parse_manifest(&current, &data)?;
                return Ok(ResolvedManifest {
                    digest: current,
                    manifest,
                });
            }
            _ => {
                let mt = serde_json::from_slice::<serde_json::Value>(&data)
                    .ok()
                    .and_then(|v| {
                        v.get("mediaType")
                            .and_then(|m| m.as_str())
                            .map(String::from)
                    })
                    .unwrap_or_else(|| "(none)".into());
                return Err(ManifestError::MediaType(mt));
            }
        }
    }
    Err(ManifestError::TooDeep(digest.clone()))
}

/// The manifest of `index` for `platform`. An entry without a platform is
/// taken only when it is the index's only manifest.
pub fn pick_platform(
    index_digest: &Digest,
    index: &ImageIndex,
    platform: &Platform,
) -> Result<Digest, ManifestError> {
    let candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            matches!(
                kind_of(d.media_type().as_ref()),
                Kind::Manifest | Kind::Index
            )
        })
        .collect();
    for d in &candidates {
        if d.platform().as_ref().is_some_and(|p| platform.matches(p)) {
            return descriptor_digest(d);
        }
    }
    if let [only] = candidates.as_slice() {
        if only.platform().is_none() {
            return descriptor_digest(only);
        }
    }
    Err(ManifestError::NoPlatform {
        digest: index_digest.clone(),
        platform: platform.clone(),
    })
}

/// The diff IDs a config lists, validated.
pub fn diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>, DigestError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|s| Digest::parse(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::ContentStore;

    fn put(store: &ContentStore, v: serde_json::Value) -> (Digest, u64) {
        let data = serde_json::to_vec(&v).unwrap();
        (store.write_blob(&data).unwrap(), data.len() as u64)
    }

    #[test]
    fn docker_manifest_list_resolves_to_linux_amd64() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (config, csize) = put(
            &store,
            serde_json::json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []}}),
        );
        let manifest = |arch: &str| {
            serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "digest": config, "size": csize},
                "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": 1,
                    "digest": Digest::of(arch.as_bytes())}]})
        };
        let (arm, arm_size) = put(&store, manifest("arm64"));
        let (amd, amd_size) = put(&store, manifest("amd64"));
        let (list, _) = put(
            &store,
            serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST,
                "manifests": [
                    {"mediaType": DOCKER_MANIFEST, "digest": arm, "size": arm_size,
                     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                    {"mediaType": DOCKER_MANIFEST, "digest": amd, "size": amd_size,
                     "platform": {"architecture": "amd64", "os": "linux"}}]}),
        );
        let r = resolve(&store, &list, &Platform::linux_amd64()).unwrap();
        assert_eq!(r.digest, amd);
        assert_eq!(r.manifest.config().media_type().to_string(), DOCKER_CONFIG);
        assert_eq!(
            kind_of(r.manifest.layers()[0].media_type().as_ref()),
            Kind::Layer
        );
        // A manifest resolves to itself.
        assert_eq!(
            resolve(&store, &amd, &Platform::linux_amd64())
                .unwrap()
                .digest,
            amd
        );
        let s390 = Platform {
            os: "linux".into(),
            architecture: "s390x".into(),
            variant: None,
        };
        let e = resolve(&store, &list, &s390).unwrap_err().to_string();
        assert!(e.contains("no manifest for linux/s390x"), "{e}");
        // Garbage is reported with its media type.
        let (junk, _) = put(&store, serde_json::json!({"mediaType": "text/plain"}));
        let e = resolve(&store, &junk, &Platform::linux_amd64()).unwrap_err();
        assert!(
            matches!(e, ManifestError::MediaType(ref m) if m == "text/plain"),
            "{e}"
        );
    }
}
