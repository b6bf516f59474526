//! `push`: every blob of the image (HEAD first: what the registry has is
//! not sent; a blob another repository of the same registry has is mounted),
//! uploaded monolithically or, past the chunk size, in PATCH chunks; then
//! the manifest. The digest returned is the registry's
//! `Docker-Content-Digest` for the manifest, checked equal to vessel's.

use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::image::ImageManifest;
use url::Url;
use vessel_image::manifest::{self, Kind};
use vessel_image::{Digest, ImageStore, Reference};

use crate::client::{pull_scope, push_scope, Body, Client, Request};
use crate::error::RegistryError;
use crate::options::Options;
use crate::parallel;
use crate::progress::{Direction, Outcome};
use crate::sources;
use crate::status::status_error;

/// Push the image `image` names in `store` to `dest`; the manifest digest
/// the registry stored.
pub fn push(
    store: &ImageStore,
    image: &Reference,
    dest: &Reference,
    options: &Options,
) -> Result<Digest, RegistryError> {
    let target = store.target(image).map_err(RegistryError::Store)?;
    let content = store.content();
    let client = Client::new(dest.registry(), options)?;
    let push = Pusher {
        client: &client,
        store,
        repo: dest.repository(),
        options,
    };
    let data = content
        .read_blob(&target.digest, manifest::MAX_JSON_BLOB)
        .map_err(RegistryError::Content)?;
    let tag = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_string(),
        (None, _) => target.digest.to_string(),
    };
    options.progress.note(&format!("Pushing {dest}"));
    let bad = |source| RegistryError::Manifest {
        reference: image.to_string(),
        source,
    };
    let digest = match manifest::sniff_kind(&data) {
        Kind::Manifest => {
            push.image(&target.digest, &data)?;
            push.manifest(&tag, &media_type(&data, &target.media_type), &data)?
        }
        Kind::Index => {
            let index = manifest::parse_index(&target.digest, &data).map_err(bad)?;
            let children: Vec<Digest> = index
                .manifests()
                .iter()
                .map(manifest::descriptor_digest)
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            if children.iter().all(|c| content.exists(c)) {
                for (c, desc) in children.iter().zip(index.manifests()) {
                    let cdata = content
                        .read_blob(c, manifest::MAX_JSON_BLOB)
                        .map_err(RegistryError::Content)?;
                    push.image(c, &cdata)?;
                    push.manifest(&c.to_string(), desc.media_type().as_ref(), &cdata)?;
                }
                push.manifest(&tag, &media_type(&data, &target.media_type), &data)?
            } else {
                // A pull keeps only its platform's manifest: push that one
                // image (its digest is the platform manifest's, not the
                // index's).
                let resolved = manifest::resolve(content, &target.digest, &options.platform)
                    .map_err(|source| RegistryError::Platform {
                        reference: image.to_string(),
                        source,
                    })?;
                let mdata = content
                    .read_blob(&resolved.digest, manifest::MAX_JSON_BLOB)
                    .map_err(RegistryError::Content)?;
                push.image(&resolved.digest, &mdata)?;
                push.manifest(&tag, &media_type(&mdata, manifest::OCI_MANIFEST), &mdata)?
            }
        }
        _ => {
            return Err(RegistryError::MediaType {
                reference: image.to_string(),
                media_type: target.media_type,
            })
        }
    };
    options.progress.note(&format!("Digest: {digest}"));
    Ok(digest)
}

/// The manifest's own `mediaType`, else the fallback.
fn media_type(data: &[u8], fallback: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
        .unwrap_or_else(|| fallback.to_string())
}

struct Pusher<'a> {
    client: &'a Client,
    store: &'a ImageStore,
    repo: &'a str,
    options: &'a Options,
}

impl Pusher<'_> {
    /// Push the config and layers of the manifest `data`.
    fn image(&self, digest: &Digest, data: &[u8]) -> Result<(), RegistryError> {
        let bad = |source| RegistryError::Manifest {
            reference: digest.to_string(),
            source,
        };
        let m: ImageManifest = manifest::parse_manifest(digest, data).map_err(bad)?;
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for d in std::iter::once(m.config()).chain(m.layers()) {
            let dg = manifest::descriptor_digest(d).map_err(bad)?;
            if !blobs.iter().any(|(x, _)| x == &dg) {
                blobs.push((dg, d.size()));
            }
        }
        let progress = &*self.options.progress;
        parallel::run(&blobs, self.options.jobs, |(d, size), cancelled| {
            let r = self.blob(d, *size, cancelled);
            if r.is_err() {
                progress.end(d, Outcome::Failed);
            }
            r
        })?;
        let name = format!("{}/{}", self.client.registry(), self.repo);
        let all: Vec<Digest> = blobs.into_iter().map(|(d, _)| d).collect();
        sources::record(self.store.root(), &name, &all);
        Ok(())
    }

    fn blob_url(&self, digest: &Digest) -> Result<Url, RegistryError> {
        self.client.url(&format!("v2/{}/blobs/{digest}", self.repo))
    }

    /// One blob: skip if present, mount if another repository has it,
    /// else upload.
    fn blob(
        &self,
        digest: &Digest,
        size: u64,
        cancelled: &AtomicBool,
    ) -> Result<(), RegistryError> {
        let progress = &*self.options.progress;
        let scopes = [push_scope(self.repo)];
        let place = self.client.place(self.repo, format!("blob {digest}"));
        progress.begin(digest, size, Direction::Upload);
        let head = self.client.send_raw(&Request {
            method: "HEAD",
            url: self.blob_url(digest)?,
            scopes: &scopes,
            headers: vec![],
            body: Body::Empty,
            place: place.clone(),
        })?;
        match head {
            Ok(_) => {
                progress.end(digest, Outcome::Exists);
                return Ok(());
            }
            Err((404, _)) => {}
            Err((status, resp)) => return Err(status_error(&place, status, resp)),
        }
        let path = self.store.content().blob_path(digest);
        if !path.is_file() {
            return Err(RegistryError::Content(
                vessel_image::ContentError::NotFound(digest.clone()),
            ));
        }
        let uploads = self
            .client
            .url(&format!("v2/{}/blobs/uploads/", self.repo))?;
        let source = sources::find(self.store.root(), self.client.registry(), digest, self.repo);
        let location = match source {
            Some(from) => {
                let mut url = uploads;
                url.query_pairs_mut()
                    .append_pair("mount", &digest.to_string())
                    .append_pair("from", &from);
                let scopes = [push_scope(self.repo), pull_scope(&from)];
                let resp = self.client.send(&Request {
                    method: "POST",
                    url: url.clone(),
                    scopes: &scopes,
                    headers: vec![],
                    body: Body::Empty,
                    place: place.clone(),
                })?;
                if resp.status() == 201 {
                    progress.end(digest, Outcome::Mounted(from));
                    return Ok(());
                }
                // 202: the registry could not mount; it opened an upload.
                self.location(&url, &resp, &place.what)?
            }
            None => {
                let resp = self.client.send(&Request {
                    method: "POST",
                    url: uploads.clone(),
                    scopes: &scopes,
                    headers: vec![],
                    body: Body::Empty,
                    place: place.clone(),
                })?;
                self.location(&uploads, &resp, &place.what)?
            }
        };
        let counter = |done: u64| progress.advance(digest, done);
        let mut location = location;
        let mut offset = 0u64;
        let chunk = self.options.chunk_size.max(1);
        if size > chunk {
            while offset < size {
                if cancelled.load(Ordering::Relaxed) {
                    return Err(RegistryError::Cancelled);
                }
                let len = chunk.min(size - offset);
                let base = offset;
                let part_counter = |done: u64| counter(base + done);
                let resp = self.client.send(&Request {
                    method: "PATCH",
                    url: location.clone(),
                    scopes: &scopes,
                    headers: vec![
                        ("Content-Type", "application/octet-stream".into()),
                        ("Content-Range", format!("{offset}-{}", offset + len - 1)),
                    ],
                    body: Body::File {
                        path: &path,
                        offset,
                        len,
                        counter: &part_counter,
                    },
                    place: place.clone(),
                })?;
                location = self.location(&location, &resp, &place.what)?;
                offset += len;
            }
        }
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let rest = size - offset;
        let final_counter = |done: u64| counter(offset + done);
        let resp = self.client.send(&Request {
            method: "PUT",
            url,
            scopes: &scopes,
            headers: vec![("Content-Type", "application/octet-stream".into())],
            body: if rest == 0 {
                Body::Empty
            } else {
                Body::File {
                    path: &path,
                    offset,
                    len: rest,
                    counter: &final_counter,
                }
            },
            place: place.clone(),
        })?;
        self.check_digest(&resp, digest, &place.what)?;
        progress.end(digest, Outcome::Done);
        Ok(())
    }

    /// The upload URL a POST or PATCH answered with.
    fn location(
        &self,
        base: &Url,
        resp: &ureq::Response,
        what: &str,
    ) -> Result<Url, RegistryError> {
        let loc = resp
            .header("location")
            .ok_or_else(|| RegistryError::Header {
                registry: self.client.registry().to_string(),
                what: what.to_string(),
                header: "Location",
            })?;
        self.client.join(base, loc)
    }

    /// The registry's `Docker-Content-Digest`, when sent, must be ours.
    fn check_digest(
        &self,
        resp: &ureq::Response,
        ours: &Digest,
        what: &str,
    ) -> Result<(), RegistryError> {
        match resp.header("docker-content-digest") {
            Some(theirs) if theirs != ours.to_string() => Err(RegistryError::PushDigest {
                registry: self.client.registry().to_string(),
                repository: self.repo.to_string(),
                what: what.to_string(),
                expected: ours.clone(),
                actual: theirs.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// PUT a manifest under `reference` (a tag or its digest).
    fn manifest(
        &self,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<Digest, RegistryError> {
        let ours = Digest::of(data);
        let place = self
            .client
            .place(self.repo, format!("manifest {reference}"));
        let scopes = [push_scope(self.repo)];
        let resp = self.client.send(&Request {
            method: "PUT",
            url: self
                .client
                .url(&format!("v2/{}/manifests/{reference}", self.repo))?,
            scopes: &scopes,
            headers: vec![("Content-Type", media_type.to_string())],
            body: Body::Bytes(data),
            place: place.clone(),
        })?;
        self.check_digest(&resp, &ours, &place.what)?;
        Ok(ours)
    }
}
