//! Garbage-collection roots, kept explicit.
//!
//! A blob is live if a tag reaches it, if a *lease* names it, or while its
//! ingest is still being written. A lease is a file under `leases/` that an
//! operation in progress (a load, a pull) creates before it writes its first
//! blob and removes when its tags are written, so a collector running
//! meanwhile can never take the blobs of an unfinished operation. The
//! collector itself is not written yet; `roots` is what it will start from.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::fsutil::create_unique;
use crate::tags::{TagError, TagStore};

/// Failures around leases and roots.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A lease file could not be used.
    #[error("Lease {path}: {op}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The lease file.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The tag store failed.
    #[error(transparent)]
    Tags(#[from] TagError),
}

/// Blobs an operation in progress needs kept. Removed on drop.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
}

impl Lease {
    /// Create a lease under `dir`.
    pub fn new(dir: &Path) -> Result<Self, GcError> {
        fs::create_dir_all(dir).map_err(|source| GcError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let (file, path) = create_unique(dir, "lease").map_err(|source| GcError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Lease { file, path })
    }

    /// Keep `digest` alive while this lease lives.
    pub fn add(&mut self, digest: &Digest) -> Result<(), GcError> {
        writeln!(self.file, "{digest}").map_err(|source| GcError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a collector must keep.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// Targets of every tag (manifests or indexes; walk them for the rest).
    pub tagged: Vec<Digest>,
    /// Blobs named by live leases.
    pub leased: Vec<Digest>,
    /// Ingest files being written.
    pub ingests: Vec<PathBuf>,
}

/// The roots of a store: tags, leases under `leases_dir`, ingests.
pub fn roots(tags: &TagStore, leases_dir: &Path, ingests: Vec<PathBuf>) -> Result<Roots, GcError> {
    let tagged = tags.list()?.into_values().map(|t| t.digest).collect();
    let mut leased = Vec::new();
    if let Ok(entries) = fs::read_dir(leases_dir) {
        for e in entries.flatten() {
            if let Ok(s) = fs::read_to_string(e.path()) {
                leased.extend(s.lines().filter_map(|l| Digest::parse(l).ok()));
            }
        }
    }
    Ok(Roots {
        tagged,
        leased,
        ingests,
    })
}
