//! Streaming a blob in: hash while writing to a temporary file, verify, rename.
//!
//! The writer holds an exclusive `flock` on its temporary file while it
//! lives, so the garbage collector can tell a write in progress from the
//! debris of a killed process. The final rename happens under a *shared*
//! lock on `gc.lock` (the collector takes it exclusively), so a blob can
//! never appear, or be found already present, in the middle of a collection.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::store::io_err;
use super::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil::FileLock;
use crate::gc::Lease;

/// A blob being written. Dropping it without [`Writer::commit`] removes the
/// temporary file; nothing becomes visible.
#[derive(Debug)]
pub struct Writer {
    store: ContentStore,
    file: Option<File>,
    temp: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Writer {
    pub(super) fn new(store: ContentStore) -> Result<Self, ContentError> {
        let dir = store.ingest_dir();
        // Created and locked in one step as the collector sees it: it never
        // finds this file unlocked while we live.
        let gc_lock = store.gc_lock_path();
        let _gc = FileLock::shared(&gc_lock).map_err(io_err("lock", &gc_lock))?;
        let (file, temp) =
            crate::fsutil::create_unique(&dir, "blob").map_err(io_err("create ingest in", &dir))?;
        if let Err(e) = crate::fsutil::flock(&file, libc::LOCK_EX) {
            let _ = std::fs::remove_file(&temp);
            return Err(io_err("lock", &temp)(e));
        }
        Ok(Writer {
            store,
            file: Some(file),
            temp,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// The temporary file being written (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Verify size and digest (each when given), then make the blob visible
    /// under its digest. On a mismatch the temporary file is removed and
    /// nothing is visible. A blob already present is simply kept.
    ///
    /// Nothing keeps the blob from the garbage collector once it is visible:
    /// an operation that goes on to tag it should use [`Writer::commit_leased`].
    pub fn commit(
        self,
        expected_size: Option<u64>,
        expected_digest: Option<&Digest>,
    ) -> Result<Digest, ContentError> {
        self.finish(expected_size, expected_digest, None)
    }

    /// As [`Writer::commit`], but the digest is added to `lease` before the
    /// blob becomes visible (or is found already present), both under the
    /// collector's shared lock: no collection can take it in between.
    pub fn commit_leased(
        self,
        expected_size: Option<u64>,
        expected_digest: Option<&Digest>,
        lease: &mut Lease,
    ) -> Result<Digest, ContentError> {
        self.finish(expected_size, expected_digest, Some(lease))
    }

    fn finish(
        mut self,
        expected_size: Option<u64>,
        expected_digest: Option<&Digest>,
        lease: Option<&mut Lease>,
    ) -> Result<Digest, ContentError> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = expected_size {
            if expected != self.size {
                return Err(ContentError::SizeMismatch {
                    expected,
                    actual: self.size,
                    digest: actual,
                });
            }
        }
        if let Some(expected) = expected_digest {
            if expected != &actual {
                return Err(ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let gc_lock = self.store.gc_lock_path();
        let _gc = FileLock::shared(&gc_lock).map_err(io_err("lock", &gc_lock))?;
        let mut lease = lease;
        if let Some(lease) = lease.as_deref_mut() {
            lease
                .add_locked(&actual)
                .map_err(|e| ContentError::Lease(Box::new(e)))?;
        }
        let target = self.store.blob_path(&actual);
        if target.exists() {
            return Ok(actual); // Drop removes the temporary file.
        }
        let file = self.file.take().expect("file present until commit");
        file.sync_all().map_err(io_err("sync", &self.temp))?;
        // The ingest lock goes with the file; the shared GC lock held here
        // keeps the collector from taking the unlocked temporary file.
        drop(file);
        std::fs::rename(&self.temp, &target).map_err(io_err("rename into", &target))?;
        self.temp = PathBuf::new();
        if let Some(lease) = lease {
            lease.created(actual.clone());
        }
        if let Some(dir) = target.parent() {
            crate::fsutil::sync_dir(dir).map_err(io_err("sync", dir))?;
        }
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().expect("file present until commit");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
