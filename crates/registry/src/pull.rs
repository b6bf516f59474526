//! `pull`: manifest (and index, resolved to the platform), config, then the
//! layers on a few threads, each streamed into the content store through a
//! verifying writer. Manifests and config are written last and the tag
//! after them, so a failed pull leaves the tags as they were and no
//! manifest that names a missing blob.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use vessel_image::content::{ContentError, Writer as ContentWriter};
use vessel_image::manifest::{self, ManifestError};
use vessel_image::tags::Target;
use vessel_image::{Digest, ImageStore, Reference};

use crate::client::{pull_scope, Body, Client, Request};
use crate::error::RegistryError;
use crate::fetch::{self, Fetched, Parsed};
use crate::options::Options;
use crate::parallel;
use crate::progress::{Direction, Outcome, Progress};
use crate::sources;

/// How deep indexes may nest.
const MAX_DEPTH: usize = 4;

/// Pull `reference` into `store` and tag it; the digest of what the
/// reference names (the index, for a multi-platform image).
pub fn pull(
    store: &ImageStore,
    reference: &Reference,
    options: &Options,
) -> Result<Digest, RegistryError> {
    let client = Client::new(reference.registry(), options)?;
    let repo = reference.repository();
    let scopes = [pull_scope(repo)];
    let name = reference.to_string();
    let progress = &*options.progress;
    progress.note(&format!("Pulling {name}"));

    let top_ref = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = fetch::manifest(
        &client,
        repo,
        &scopes,
        &top_ref,
        reference.digest().map(|d| (d, None)),
    )?;
    let mut chain: Vec<Fetched> = vec![top];
    let image = loop {
        let current = chain.last().expect("chain starts with the top");
        let Parsed::Index(index) = &current.parsed else {
            let Parsed::Manifest(m) = &current.parsed else {
                unreachable!("a fetched body is a manifest or an index")
            };
            break (**m).clone();
        };
        if chain.len() > MAX_DEPTH {
            return Err(RegistryError::Manifest {
                reference: name,
                source: ManifestError::TooDeep(chain[0].digest.clone()),
            });
        }
        let child = manifest::pick_platform(&current.digest, index, &options.platform).map_err(
            |source| RegistryError::Platform {
                reference: name.clone(),
                source,
            },
        )?;
        let size = index
            .manifests()
            .iter()
            .find(|d| d.digest().as_ref() == child.to_string())
            .map(|d| d.size());
        let f = fetch::manifest(
            &client,
            repo,
            &scopes,
            &child.to_string(),
            Some((&child, size)),
        )?;
        chain.push(f);
    };

    let bad = |source| RegistryError::Manifest {
        reference: name.clone(),
        source,
    };
    let config_digest = manifest::descriptor_digest(image.config()).map_err(bad)?;
    let config_data = fetch::small_blob(
        &client,
        repo,
        &scopes,
        &config_digest,
        image.config().size(),
    )?;
    let config = manifest::parse_config(&config_digest, &config_data).map_err(bad)?;
    let diff_ids = config.rootfs().diff_ids().len();
    if diff_ids != image.layers().len() {
        return Err(RegistryError::LayerCount {
            reference: name,
            layers: image.layers().len(),
            diff_ids,
        });
    }
    let mut layers: Vec<(Digest, u64)> = Vec::new();
    for l in image.layers() {
        let d = manifest::descriptor_digest(l).map_err(bad)?;
        if !layers.iter().any(|(x, _)| x == &d) {
            layers.push((d, l.size()));
        }
    }

    // The lease keeps every blob of this pull alive until the tag names it.
    let mut lease = store.lease().map_err(RegistryError::Store)?;
    let lease_err = |e| RegistryError::Store(vessel_image::StoreError::Gc(e));
    for d in layers
        .iter()
        .map(|(d, _)| d)
        .chain([&config_digest])
        .chain(chain.iter().map(|f| &f.digest))
    {
        lease.add(d).map_err(lease_err)?;
    }

    parallel::run(&layers, options.jobs, |(digest, size), cancelled| {
        let r = download(
            &client, store, repo, &scopes, digest, *size, progress, cancelled,
        );
        if r.is_err() {
            progress.end(digest, Outcome::Failed);
        }
        r
    })?;

    put(store, &config_digest, &config_data)?;
    for f in chain.iter().rev() {
        put(store, &f.digest, &f.data)?;
    }
    let top = &chain[0];
    store
        .tags()
        .set(
            reference,
            Target {
                media_type: top.media_type.clone(),
                digest: top.digest.clone(),
                size: top.data.len() as u64,
            },
        )
        .map_err(|e| RegistryError::Store(e.into()))?;
    let mut all: Vec<Digest> = layers.into_iter().map(|(d, _)| d).collect();
    all.push(config_digest);
    sources::record(store.root(), &reference.name(), &all);
    progress.note(&format!("Digest: {}", top.digest));
    drop(lease);
    Ok(top.digest.clone())
}

/// Write an in-memory blob whose digest is already known.
fn put(store: &ImageStore, digest: &Digest, data: &[u8]) -> Result<(), RegistryError> {
    if store.content().exists(digest) {
        return Ok(());
    }
    let mut w = store.content().writer().map_err(RegistryError::Content)?;
    let path = w.temp_path().to_path_buf();
    w.write_all(data).map_err(|source| {
        RegistryError::Content(ContentError::Io {
            op: "write",
            path,
            source,
        })
    })?;
    w.commit(Some(data.len() as u64), Some(digest))
        .map_err(RegistryError::Content)?;
    Ok(())
}

/// Stream one layer into the store. The writer hashes as it goes and its
/// commit checks size and digest; more bytes than the descriptor says stop
/// the download at once. A connection that breaks midway is picked up where
/// it broke with a `Range` request (a registry that answers the whole blob
/// instead starts the writer over), as often as the retry policy allows.
/// Any failure drops the writer, which removes its temporary file: nothing
/// becomes visible.
#[allow(clippy::too_many_arguments)]
fn download(
    client: &Client,
    store: &ImageStore,
    repo: &str,
    scopes: &[String],
    digest: &Digest,
    size: u64,
    progress: &dyn Progress,
    cancelled: &AtomicBool,
) -> Result<(), RegistryError> {
    progress.begin(digest, size, Direction::Download);
    if store.content().exists(digest) {
        progress.end(digest, Outcome::Exists);
        return Ok(());
    }
    let place = client.place(repo, format!("blob {digest}"));
    let policy = client.retry_policy();
    let mut writer = store.content().writer().map_err(RegistryError::Content)?;
    let mut resumes = 0;
    loop {
        let offset = writer.written();
        let mut headers = vec![];
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let resp = client.send(&Request {
            method: "GET",
            url: client.url(&format!("v2/{repo}/blobs/{digest}"))?,
            scopes,
            headers,
            body: Body::Empty,
            place: place.clone(),
        })?;
        if offset > 0 && !resumes_at(&resp, offset) {
            if resp.status() != 200 {
                let got = resp.header("content-range").unwrap_or("none").to_string();
                return Err(RegistryError::Transfer {
                    registry: place.registry,
                    what: format!("{} of {repo}", place.what),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("asked for bytes {offset}- and got Content-Range {got:?}"),
                    ),
                });
            }
            // The whole blob again (no Range support): start over.
            writer = store.content().writer().map_err(RegistryError::Content)?;
        }
        match receive(resp, &mut writer, size, digest, progress, cancelled) {
            Ok(()) => break,
            Err(Received::Broken(_))
                if resumes < policy.retries && !cancelled.load(Ordering::Relaxed) =>
            {
                std::thread::sleep(policy.delay(resumes, None));
                resumes += 1;
            }
            Err(Received::Broken(source)) => {
                return Err(RegistryError::Transfer {
                    registry: place.registry,
                    what: format!("{} of {repo}", place.what),
                    source,
                })
            }
            Err(Received::Failed(e)) => return Err(*e),
        }
    }
    writer
        .commit(Some(size), Some(digest))
        .map_err(|e| match e {
            ContentError::SizeMismatch { .. } | ContentError::DigestMismatch { .. } => {
                RegistryError::Blob {
                    digest: digest.clone(),
                    source: e,
                }
            }
            other => RegistryError::Content(other),
        })?;
    progress.end(digest, Outcome::Done);
    Ok(())
}

/// Whether a response to `Range: bytes=OFFSET-` is the rest of the blob:
/// 206 with a `Content-Range` that starts at `offset`.
fn resumes_at(resp: &ureq::Response, offset: u64) -> bool {
    resp.status() == 206
        && resp
            .header("content-range")
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .and_then(|v| v.split_once('-'))
            .and_then(|(first, _)| first.trim().parse::<u64>().ok())
            == Some(offset)
}

/// Why a body did not arrive whole.
enum Received {
    /// The connection broke: worth resuming.
    Broken(std::io::Error),
    /// Anything else (too long, a write failure, cancelled): final.
    Failed(Box<RegistryError>),
}

/// Append a response body to `writer`, which already holds the bytes before
/// the body's first one.
fn receive(
    resp: ureq::Response,
    writer: &mut ContentWriter,
    size: u64,
    digest: &Digest,
    progress: &dyn Progress,
    cancelled: &AtomicBool,
) -> Result<(), Received> {
    let too_long = || {
        Received::Failed(Box::new(RegistryError::BlobTooLong {
            digest: digest.clone(),
            expected: size,
        }))
    };
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        if writer.written().saturating_add(len) > size {
            return Err(too_long());
        }
    }
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 128 << 10];
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(Received::Failed(Box::new(RegistryError::Cancelled)));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Received::Broken(e)),
        };
        if writer.written() + n as u64 > size {
            return Err(too_long());
        }
        let path = writer.temp_path().to_path_buf();
        writer.write_all(&buf[..n]).map_err(|source| {
            Received::Failed(Box::new(RegistryError::Content(ContentError::Io {
                op: "write",
                path,
                source,
            })))
        })?;
        progress.advance(digest, writer.written());
    }
    if writer.written() < size {
        // A body without Content-Length that ended early.
        return Err(Received::Broken(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the body ended after {} of {size} bytes", writer.written()),
        )));
    }
    Ok(())
}
