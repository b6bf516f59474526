//! Opening the layout and reading blobs.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Writer;
use crate::digest::Digest;

/// Failures of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A file or directory of the store could not be used.
    #[error("Content store: {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// No blob with this digest.
    #[error("Blob {0} not found in the content store")]
    NotFound(Digest),
    /// The written bytes are not what the writer was told to expect.
    #[error("Blob size mismatch: expected {expected} bytes, got {actual} (digest {digest})")]
    SizeMismatch {
        /// Size announced.
        expected: u64,
        /// Size written.
        actual: u64,
        /// Digest of what was written.
        digest: Digest,
    },
    /// The written bytes hash to another digest.
    #[error("Blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Digest announced.
        expected: Digest,
        /// Digest of what was written.
        actual: Digest,
    },
    /// The blob could not be added to its lease.
    #[error("Cannot keep the blob in its lease")]
    Lease(#[source] Box<crate::gc::GcError>),
    /// A blob is larger than a caller's limit (for in-memory reads).
    #[error("Blob {digest} is {size} bytes, more than the {limit} bytes allowed here")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContentError {
    let path = path.to_path_buf();
    move |source| ContentError::Io { op, path, source }
}

/// Content of the `oci-layout` file.
const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// A content-addressed blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Open (creating if needed) an OCI layout at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            crate::fsutil::write_atomic(&layout, OCI_LAYOUT.as_bytes())
                .map_err(io_err("write", &layout))?;
        }
        Ok(ContentStore { root })
    }

    /// The layout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        // The hex is validated by `Digest`: it is a plain file name.
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The directory of in-progress writes.
    pub fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// The lock the garbage collector holds exclusively while it runs.
    pub(crate) fn gc_lock_path(&self) -> PathBuf {
        self.root.join("gc.lock")
    }

    /// Whether a blob is present.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a present blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &self.blob_path(digest))(e)),
        }
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(io_err("open", &path)(e)),
        }
    }

    /// Read a whole (small) blob into memory, checking its digest again
    /// (manifests and configs are read this way: cheap, and a blob changed on
    /// disk behind the store's back is caught).
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let size = self.size(digest)?;
        if size > limit {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .map_err(io_err("read", &path))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(ContentError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Start writing a blob.
    pub fn writer(&self) -> Result<Writer, ContentError> {
        Writer::new(self.clone())
    }

    /// Write a whole in-memory blob; returns its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let mut w = self.writer()?;
        let path = w.temp_path().to_path_buf();
        io::Write::write_all(&mut w, data).map_err(io_err("write", &path))?;
        w.commit(Some(data.len() as u64), None)
    }

    /// Write a whole in-memory blob kept by `lease`; returns its digest.
    pub fn write_blob_leased(
        &self,
        data: &[u8],
        lease: &mut crate::gc::Lease,
    ) -> Result<Digest, ContentError> {
        let mut w = self.writer()?;
        let path = w.temp_path().to_path_buf();
        io::Write::write_all(&mut w, data).map_err(io_err("write", &path))?;
        w.commit_leased(Some(data.len() as u64), None, lease)
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Temporary files of writes in progress (or left by a crash): GC roots
    /// while their writer lives, debris afterwards.
    pub fn ingests(&self) -> Result<Vec<PathBuf>, ContentError> {
        let dir = self.ingest_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            out.push(entry.map_err(io_err("list", &dir))?.path());
        }
        Ok(out)
    }

    /// Remove a blob (for garbage collection). Absent blobs are fine.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}
