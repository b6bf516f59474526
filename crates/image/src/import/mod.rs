//! `import`: a root filesystem tarball (plain, gzip or zstd) becomes a
//! one-layer image with a generated config.
//!
//! The `--change`s are parsed first, so a bad one fails before anything is
//! written. The tarball is then read once: its decompressed stream goes into
//! the content store as an uncompressed layer (so the layer's digest is its
//! diff ID) while the tar entries are parsed, which catches a corrupt or
//! truncated tarball before the blob is committed. Entries with a `..`
//! component are refused here (they would be refused at unpack anyway).
//! Config and manifest are written under a lease and the name last, in one
//! update; any failure leaves the names as they were and at most
//! unreachable blobs for the collector.

mod change;

pub use change::{ChangeError, Changes};

use std::io::{self, Read, Write};

use crate::apply::decompress;
use crate::content::{ContentError, Writer};
use crate::digest::Digest;
use crate::manifest::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::tags::{key, Target};

/// Failures of `import`.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A `--change` is refused.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// The input is empty.
    #[error("Tarball {0} is empty")]
    Empty(String),
    /// The input is not a readable tar stream (corrupt, truncated, bad compression).
    #[error("Tarball {source_name} is not a valid tar archive")]
    Tar {
        /// Where it came from (a path, or `-`).
        source_name: String,
        /// The reader's reason.
        #[source]
        source: io::Error,
    },
    /// An entry ends before its size.
    #[error(
        "Tarball {source_name} is truncated: entry {entry:?} has {actual} of its {expected} bytes"
    )]
    Truncated {
        /// Where it came from.
        source_name: String,
        /// The entry.
        entry: String,
        /// Its size per its header.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// An entry climbs out of the root.
    #[error("Tarball {source_name}: entry {entry:?} has a '..' component")]
    DotDot {
        /// Where it came from.
        source_name: String,
        /// The entry.
        entry: String,
    },
    /// Storing a blob failed.
    #[error("Cannot store the imported layer")]
    Content(#[source] ContentError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `--message`: the history entry's comment.
    pub message: Option<String>,
    /// Where the tarball comes from, for messages and history (`-` for stdin).
    pub source_name: String,
    /// The name to give the image (none: an untagged image).
    pub name: Option<Reference>,
}

/// The image made.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Its image ID (config digest).
    pub id: Digest,
    /// Its manifest.
    pub target: Target,
    /// The layer's digest (= its diff ID).
    pub layer: Digest,
}

/// Import the tarball read from `reader` into `store`.
pub fn import<R: Read>(
    store: &ImageStore,
    reader: R,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let changes = Changes::parse(&opts.changes)?;
    let mut lease = store.lease()?;
    match import_leased(store, reader, opts, &changes, &mut lease) {
        Ok(imported) => Ok(imported),
        Err(e) => {
            // As for load: take back what this import added.
            let _ = crate::gc::discard(store, lease);
            Err(e)
        }
    }
}

fn import_leased<R: Read>(
    store: &ImageStore,
    reader: R,
    opts: &ImportOptions,
    changes: &Changes,
    lease: &mut crate::gc::Lease,
) -> Result<Imported, ImportError> {
    let mut writer = store.content().writer().map_err(ImportError::Content)?;
    let size = read_tarball(reader, &mut writer, &opts.source_name)?;
    let layer = writer
        .commit_leased(Some(size), None, lease)
        .map_err(ImportError::Content)?;

    let created = crate::time::now_rfc3339();
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source_name));
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": changes.to_config_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer]},
        "history": [{"created": created, "created_by": "vessel import", "comment": comment}],
    });
    let config = serde_json::to_vec(&config).expect("config serializes");
    let put = |data: &[u8], lease: &mut crate::gc::Lease| {
        store
            .content()
            .write_blob_leased(data, lease)
            .map_err(ImportError::Content)
    };
    let id = put(&config, lease)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": id, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": size}],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    let target = Target {
        media_type: OCI_MANIFEST.into(),
        digest: put(&manifest, lease)?,
        size: manifest.len() as u64,
    };
    store
        .tags()
        .update_index(|index| {
            match &opts.name {
                Some(n) => index.retarget(key(n), target.clone()),
                None => index.add_untagged(target.clone()),
            }
            Ok(())
        })
        .map_err(StoreError::from)?;
    Ok(Imported { id, target, layer })
}

/// Copy the decompressed stream into `out` while checking it is a whole
/// tar archive; its size.
fn read_tarball<R: Read>(reader: R, out: &mut Writer, name: &str) -> Result<u64, ImportError> {
    let tar_err = |source| ImportError::Tar {
        source_name: name.to_string(),
        source,
    };
    let mut tee = Tee {
        inner: decompress(reader).map_err(tar_err)?,
        out,
        write_error: None,
    };
    let result = check_entries(&mut tee, name).and_then(|()| {
        // The rest (end-of-archive blocks, padding) belongs to the layer too.
        io::copy(&mut tee, &mut io::sink())
            .map(|_| ())
            .map_err(tar_err)
    });
    if let Some(e) = tee.write_error.take() {
        return Err(ImportError::Content(ContentError::Io {
            op: "write",
            path: tee.out.temp_path().to_path_buf(),
            source: e,
        }));
    }
    result?;
    let size = tee.out.written();
    if size == 0 {
        return Err(ImportError::Empty(name.to_string()));
    }
    Ok(size)
}

fn check_entries<R: Read>(reader: R, name: &str) -> Result<(), ImportError> {
    let tar_err = |source| ImportError::Tar {
        source_name: name.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if path.split('/').any(|c| c == "..") {
            return Err(ImportError::DotDot {
                source_name: name.to_string(),
                entry: path,
            });
        }
        let expected = entry.header().entry_size().map_err(tar_err)?;
        let actual = io::copy(&mut entry, &mut io::sink()).map_err(tar_err)?;
        if actual != expected {
            return Err(ImportError::Truncated {
                source_name: name.to_string(),
                entry: path,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

/// Everything read through it is also written to `out`.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut Writer,
    /// A failure of the store, kept apart so it is not blamed on the input.
    write_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.write_error = Some(e);
            return Err(io::Error::other(msg));
        }
        Ok(n)
    }
}
