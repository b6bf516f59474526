//! Test images built in the test: a busybox rootfs (the static
//! `/bin/busybox` of busybox-static) as a gzip layer plus a small layer
//! naming the architecture, with an OCI config and manifest.

use std::io::Write;
use std::path::Path;

use vessel_image::tags::Target;
use vessel_image::{Digest, ImageStore, Reference};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Clone)]
pub struct Blob {
    pub digest: Digest,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(data: Vec<u8>) -> Blob {
        Blob {
            digest: Digest::of(&data),
            data,
        }
    }
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

#[derive(Clone)]
pub struct TestImage {
    pub arch: String,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

fn tar_gz(entries: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    entries(&mut b);
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl TestImage {
    /// busybox for `arch` (the binary is the host's; only the metadata and
    /// the second layer differ between architectures).
    pub fn busybox(arch: &str) -> TestImage {
        let busybox = std::fs::read(super::tool("busybox")).unwrap();
        let (l1, d1) = tar_gz(|b| {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
            let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
            b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            b.append_link(&mut h, "bin/sh", "busybox").unwrap();
        });
        let text = format!("{arch}\n");
        let (l2, d2) = tar_gz(|b| {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, "etc/", std::io::empty()).unwrap();
            let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
            b.append_data(&mut h, "etc/arch", text.as_bytes()).unwrap();
        });
        let config = Blob::new(
            serde_json::to_vec(&serde_json::json!({
                "architecture": arch, "os": "linux",
                "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [d1, d2]},
            }))
            .unwrap(),
        );
        let layers = vec![Blob::new(l1), Blob::new(l2)];
        let manifest = Blob::new(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size()},
                "layers": layers.iter().map(|l| serde_json::json!(
                    {"mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.size()}
                )).collect::<Vec<_>>(),
            }))
            .unwrap(),
        );
        TestImage {
            arch: arch.to_string(),
            manifest,
            config,
            layers,
        }
    }

    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.manifest, &self.config];
        v.extend(&self.layers);
        v
    }

    /// Write the image into an OCI layout directory under `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        write_layout(dir, &self.blobs(), &self.manifest, OCI_MANIFEST, tag);
    }

    /// Put the image into an image store under `reference`.
    pub fn put_in_store(&self, store: &ImageStore, reference: &str) {
        for b in self.blobs() {
            store.content().write_blob(&b.data).unwrap();
        }
        store
            .tags()
            .set(
                &Reference::parse(reference).unwrap(),
                Target {
                    media_type: OCI_MANIFEST.into(),
                    digest: self.manifest.digest.clone(),
                    size: self.manifest.size(),
                },
            )
            .unwrap();
    }
}

/// An index over several images (one per architecture).
pub fn index(images: &[&TestImage]) -> Blob {
    Blob::new(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": images.iter().map(|i| serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": i.manifest.digest, "size": i.manifest.size(),
                "platform": {"architecture": i.arch, "os": "linux"}
            })).collect::<Vec<_>>(),
        }))
        .unwrap(),
    )
}

/// An OCI layout with `blobs` and one tagged top-level descriptor.
pub fn write_layout(dir: &Path, blobs: &[&Blob], top: &Blob, media_type: &str, tag: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for b in blobs {
        std::fs::write(dir.join("blobs/sha256").join(b.digest.hex()), &b.data).unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": top.digest, "size": top.size(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Push `image` to `dest` (`host:port/repo:tag`) with skopeo.
pub fn skopeo_push(image: &TestImage, dest: &str, creds: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    image.write_layout(dir.path(), "latest");
    let src = format!("oci:{}:latest", dir.path().display());
    let dst = format!("docker://{dest}");
    let mut args = vec![
        "copy",
        "--dest-tls-verify=false",
        src.as_str(),
        dst.as_str(),
    ];
    let c;
    if let Some(creds) = creds {
        c = format!("--dest-creds={creds}");
        args.insert(1, &c);
    }
    super::skopeo(&args);
}
