//! Applying a layer (tar, tar+gzip or tar+zstd) to a directory.
//!
//! The layer is untrusted. Every filesystem change goes through `sys`: the
//! parent directory of each entry is opened with `openat2(RESOLVE_IN_ROOT)`
//! (so a symlink from this layer or a lower one, absolute or full of `..`,
//! resolves inside the target) and the entry itself is created with `*at`
//! calls on one path component, replacing whatever was there without
//! following it. `..` components are refused; absolute paths are read as
//! relative to the target. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) remove
//! what lower layers put in the target.

mod background;
mod entry;
mod path;
mod sys;

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
pub use background::{decompress_in_background, BackgroundReader};
pub use path::PathError;

/// Prefix of whiteout file names.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

/// Failures of layer application.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target directory cannot be opened.
    #[error("Cannot open layer target {path}")]
    Target {
        /// The target.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The archive cannot be read (truncated, corrupt, bad compression).
    #[error("Layer archive is unreadable")]
    Read(#[source] io::Error),
    /// An entry's path is refused.
    #[error("Layer entry refused")]
    Path(#[from] PathError),
    /// A whiteout names something it must not (`.`, `..`, empty).
    #[error("Layer entry {0:?} is an invalid whiteout")]
    BadWhiteout(String),
    /// A hard link's target is missing or is not in the layer's root.
    #[error("Layer entry {entry:?}: hard link target {target:?} is unusable")]
    HardLink {
        /// The entry.
        entry: String,
        /// Its target.
        target: String,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// Creating an entry failed.
    #[error("Layer entry {entry:?}: cannot {op}")]
    Entry {
        /// The entry.
        entry: String,
        /// What was being done.
        op: &'static str,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The uncompressed layer does not hash to the expected diff ID.
    #[error("Layer diff ID mismatch: expected {expected}, got {actual}")]
    DiffId {
        /// From the image config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
}

/// Compression of a layer blob, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Detect by magic bytes.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A reader of the uncompressed tar stream of a (possibly compressed) layer.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf()?;
    Ok(match Compression::detect(head) {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
    })
}

/// The sha256 of a layer's uncompressed stream (its diff ID).
pub fn diff_id<R: Read>(reader: R) -> io::Result<Digest> {
    let mut r = HashingReader::new(decompress(reader)?);
    io::copy(&mut r, &mut io::sink())?;
    Ok(r.finish())
}

/// Options of [`apply_layer`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Set owners from the archive (needs CAP_CHOWN). Off: files belong to
    /// the caller.
    pub same_owner: bool,
    /// Fail unless the uncompressed stream hashes to this diff ID. The check
    /// runs after the last entry: callers apply into a temporary directory
    /// and discard it on error.
    pub expected_diff_id: Option<Digest>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            same_owner: true,
            expected_diff_id: None,
        }
    }
}

/// What an application did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Number of entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Apply the layer read from `reader` (tar, tar+gzip or tar+zstd) onto the
/// directory `target`, which may hold lower layers (flattened) or be an
/// overlayfs mount of them.
pub fn apply_layer<R: Read>(
    reader: R,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<Applied, ApplyError> {
    let root: OwnedFd = File::open(target)
        .map_err(|source| ApplyError::Target {
            path: target.to_path_buf(),
            source,
        })?
        .into();
    let stream = HashingReader::new(decompress(reader).map_err(ApplyError::Read)?);
    let mut archive = tar::Archive::new(stream);
    let mut state = entry::State {
        root: root.as_fd(),
        same_owner: opts.same_owner,
        written: HashSet::new(),
        dirs: Vec::new(),
        entries: 0,
        bytes: 0,
    };
    for e in archive.entries().map_err(ApplyError::Read)? {
        let mut e = e.map_err(ApplyError::Read)?;
        state.apply(&mut e)?;
    }
    state.finish_dirs()?;
    let (entries, bytes) = (state.entries, state.bytes);
    // Hash the rest (the end-of-archive blocks and any padding) too.
    let mut stream = archive.into_inner();
    io::copy(&mut stream, &mut io::sink()).map_err(ApplyError::Read)?;
    let diff_id = stream.finish();
    if let Some(expected) = &opts.expected_diff_id {
        if expected != &diff_id {
            return Err(ApplyError::DiffId {
                expected: expected.clone(),
                actual: diff_id,
            });
        }
    }
    Ok(Applied {
        diff_id,
        entries,
        bytes,
    })
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> std::fmt::Debug for HashingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashingReader")
    }
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The digest of everything read.
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.hasher)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

pub(crate) fn show(c: &[CString]) -> String {
    path::join(c).to_string_lossy().into_owned()
}
