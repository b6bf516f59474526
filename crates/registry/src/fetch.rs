//! Fetching manifests and small blobs into memory, verified: a manifest
//! asked for by digest (or named by an index's descriptor) must hash to it
//! and have the descriptor's size; one asked for by tag must match the
//! registry's `Docker-Content-Digest` when it sends one.

use oci_spec::image::{ImageIndex, ImageManifest};
use vessel_image::content::ContentError;
use vessel_image::manifest::{self, Kind};
use vessel_image::Digest;

use crate::client::{read_capped, Body, Client, Request};
use crate::error::RegistryError;

/// Largest manifest or index accepted from a registry.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Every manifest media type vessel pulls.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest or an index.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// An image manifest.
    Manifest(Box<ImageManifest>),
    /// An index or manifest list.
    Index(Box<ImageIndex>),
}

/// A fetched, verified manifest or index.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its digest (of exactly these bytes).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The bytes, to store as they are.
    pub data: Vec<u8>,
    /// What they say.
    pub parsed: Parsed,
}

/// What a manifest body is, from its `Content-Type` or its own
/// `mediaType`/shape; schema 1 and other types are refused. Pure (no I/O),
/// so it is fuzzed.
pub fn interpret(
    name: &str,
    content_type: Option<&str>,
    data: &[u8],
) -> Result<(String, Parsed), RegistryError> {
    let digest = Digest::of(data);
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty());
    let kind = match header.as_deref().map(manifest::kind_of) {
        Some(k @ (Kind::Manifest | Kind::Index)) => k,
        _ => manifest::sniff_kind(data),
    };
    let bad = |source| RegistryError::Manifest {
        reference: name.to_string(),
        source,
    };
    let (default_type, parsed) = match kind {
        Kind::Manifest => {
            let m = manifest::parse_manifest(&digest, data).map_err(bad)?;
            manifest::descriptor_digest(m.config()).map_err(bad)?;
            for l in m.layers() {
                manifest::descriptor_digest(l).map_err(bad)?;
            }
            (manifest::OCI_MANIFEST, Parsed::Manifest(Box::new(m)))
        }
        Kind::Index => {
            let i = manifest::parse_index(&digest, data).map_err(bad)?;
            (manifest::OCI_INDEX, Parsed::Index(Box::new(i)))
        }
        _ => {
            return Err(RegistryError::MediaType {
                reference: name.to_string(),
                media_type: header.unwrap_or_else(|| "(none)".into()),
            })
        }
    };
    let media_type = match header {
        Some(h) if manifest::kind_of(&h) == kind => h,
        _ => body_media_type(data).unwrap_or_else(|| default_type.to_string()),
    };
    Ok((media_type, parsed))
}

fn body_media_type(data: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(data).ok()?.media_type
}

/// GET a manifest by tag or digest. `expected` is the digest and (from a
/// descriptor) size it must have.
pub(crate) fn manifest(
    client: &Client,
    repository: &str,
    scopes: &[String],
    reference: &str,
    expected: Option<(&Digest, Option<u64>)>,
) -> Result<Fetched, RegistryError> {
    let place = client.place(repository, format!("manifest {reference}"));
    let url = client.url(&format!("v2/{repository}/manifests/{reference}"))?;
    let resp = client.send(&Request {
        method: "GET",
        url,
        scopes,
        headers: vec![("Accept", ACCEPT.to_string())],
        body: Body::Empty,
        place: place.clone(),
    })?;
    let content_type = resp.header("content-type").map(String::from);
    let announced = resp.header("docker-content-digest").map(String::from);
    let data = read_capped(resp, MAX_MANIFEST, &place)?;
    let actual = Digest::of(&data);
    let name = format!("{}/{repository}:{reference}", client.registry());
    if let Some((digest, size)) = expected {
        if let Some(size) = size {
            if size != data.len() as u64 {
                return Err(RegistryError::ManifestSize {
                    reference: name,
                    expected: size,
                    actual: data.len() as u64,
                });
            }
        }
        if digest != &actual {
            return Err(RegistryError::ManifestDigest {
                reference: name,
                expected: digest.clone(),
                actual,
            });
        }
    } else if let Some(Ok(announced)) = announced.as_deref().map(Digest::parse) {
        // Only sha256 is compared: another algorithm cannot be checked here.
        if announced != actual {
            return Err(RegistryError::ManifestDigest {
                reference: name,
                expected: announced,
                actual,
            });
        }
    }
    let (media_type, parsed) = interpret(&name, content_type.as_deref(), &data)?;
    Ok(Fetched {
        digest: actual,
        media_type,
        data,
        parsed,
    })
}

/// GET a small blob (a config) into memory, checked against its descriptor.
pub(crate) fn small_blob(
    client: &Client,
    repository: &str,
    scopes: &[String],
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>, RegistryError> {
    let place = client.place(repository, format!("blob {digest}"));
    if size > manifest::MAX_JSON_BLOB {
        return Err(RegistryError::TooLarge {
            registry: client.registry().to_string(),
            what: format!("config {digest} of {repository}"),
            limit: manifest::MAX_JSON_BLOB,
        });
    }
    let url = client.url(&format!("v2/{repository}/blobs/{digest}"))?;
    let resp = client.send(&Request {
        method: "GET",
        url,
        scopes,
        headers: vec![],
        body: Body::Empty,
        place: place.clone(),
    })?;
    let data = read_capped(resp, size, &place).map_err(|e| match e {
        RegistryError::TooLarge { .. } => RegistryError::BlobTooLong {
            digest: digest.clone(),
            expected: size,
        },
        other => other,
    })?;
    let actual = Digest::of(&data);
    if data.len() as u64 != size {
        return Err(RegistryError::Blob {
            digest: digest.clone(),
            source: ContentError::SizeMismatch {
                expected: size,
                actual: data.len() as u64,
                digest: actual,
            },
        });
    }
    if &actual != digest {
        return Err(RegistryError::Blob {
            digest: digest.clone(),
            source: ContentError::DigestMismatch {
                expected: digest.clone(),
                actual,
            },
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_by_header_or_body() {
        let d = Digest::of(b"x");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[]}}"#,
            manifest::DOCKER_MANIFEST,
            manifest::DOCKER_CONFIG
        );
        let (mt, p) = interpret("x", None, m.as_bytes()).unwrap();
        assert_eq!(mt, manifest::DOCKER_MANIFEST);
        assert!(matches!(p, Parsed::Manifest(_)));
        let (mt, _) = interpret(
            "x",
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            m.as_bytes(),
        )
        .unwrap();
        assert_eq!(mt, manifest::DOCKER_MANIFEST);
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        let (mt, p) = interpret("x", Some("application/json"), idx.as_bytes()).unwrap();
        assert_eq!(mt, manifest::OCI_INDEX);
        assert!(matches!(p, Parsed::Index(_)));
    }

    #[test]
    fn refuses_schema1_garbage_and_bad_digests() {
        let e = interpret(
            "r",
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("v1+prettyjws"), "{e}");
        for bad in [
            &b""[..],
            b"\xff\xfe",
            b"[]",
            br#"{"schemaVersion":2,"layers":"x"}"#,
            br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:../../x","size":1},"layers":[]}"#,
            br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"md5:abc","size":1},"layers":[]}"#,
            br#"{"schemaVersion":2,"manifests":[{"digest":1}]}"#,
        ] {
            assert!(
                interpret("r", None, bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
