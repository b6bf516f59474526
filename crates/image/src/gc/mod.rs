//! Garbage collection with explicit roots.
//!
//! A blob is live if an entry of `index.json` (a name or a kept untagged
//! image) reaches it, if a *lease* names it, if a container uses its image,
//! or while its ingest is still being written. A lease is a file under
//! `leases/` that an operation in progress (a load, an import, a pull)
//! creates before it writes its first blob and removes when its tags are
//! written, so a collector running meanwhile can never take the blobs of an
//! unfinished operation. Leases and ingests are `flock`ed by their owner:
//! the kernel drops the lock when the owner dies, so the collector tells a
//! live operation from the debris of a killed one. See [`collect`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod collect;

pub use collect::{collect, discard, Collected};

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
    /// A store directory could not be used.
    #[error("Garbage collector: {op} {path}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// A root could not be followed; nothing was removed, since what it
    /// reaches is unknown.
    #[error("Image {0} cannot be read; nothing was collected")]
    Root(Digest, #[source] Box<crate::manifest::ManifestError>),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// Blobs an operation in progress needs kept. Removed on drop; while it
/// lives its file is `flock`ed, so a lease left by a killed process is seen
/// as dead and removed by the collector.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
    gc_lock: PathBuf,
    /// Blobs this operation made appear (not those it found present).
    created: Vec<Digest>,
}

impl Lease {
    /// Create a lease under `dir` (`<store>/leases`: the collector's lock
    /// is `<store>/gc.lock`).
    pub fn new(dir: &Path) -> Result<Self, GcError> {
        // Created and locked in one step as the collector sees it.
        let gc_lock = dir.parent().unwrap_or(Path::new(".")).join("gc.lock");
        let _gc = crate::fsutil::FileLock::shared(&gc_lock).map_err(|source| GcError::Io {
            op: "lock",
            path: gc_lock.clone(),
            source,
        })?;
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
        if let Err(source) = crate::fsutil::flock(&file, libc::LOCK_EX) {
            let _ = fs::remove_file(&path);
            return Err(GcError::Io {
                op: "lock",
                path,
                source,
            });
        }
        Ok(Lease {
            file,
            path,
            gc_lock,
            created: Vec::new(),
        })
    }

    /// Keep `digest` alive while this lease lives. Taken under the
    /// collector's shared lock: once this returns, no collection that could
    /// miss the entry is running, so "add, then check that the blob exists"
    /// is safe.
    pub fn add(&mut self, digest: &Digest) -> Result<(), GcError> {
        let _gc = crate::fsutil::FileLock::shared(&self.gc_lock).map_err(|source| GcError::Io {
            op: "lock",
            path: self.gc_lock.clone(),
            source,
        })?;
        self.add_locked(digest)
    }

    /// Record that this operation created `digest` (for [`discard`]).
    pub(crate) fn created(&mut self, digest: Digest) {
        self.created.push(digest);
    }

    /// `add` for a caller that already holds the shared lock.
    pub(crate) fn add_locked(&mut self, digest: &Digest) -> Result<(), GcError> {
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
    /// Targets of every tag and kept untagged image (manifests or indexes;
    /// walk them for the rest).
    pub tagged: Vec<Digest>,
    /// Blobs named by live leases.
    pub leased: Vec<Digest>,
    /// Ingest files being written.
    pub ingests: Vec<PathBuf>,
}

/// The roots of a store: tags, leases under `leases_dir`, ingests.
pub fn roots(tags: &TagStore, leases_dir: &Path, ingests: Vec<PathBuf>) -> Result<Roots, GcError> {
    let tagged = tags
        .index()?
        .targets()
        .into_iter()
        .map(|t| t.digest)
        .collect();
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
