//! Copying files between a container and the host (`vessel cp`) and from
//! an image into a new volume (docker's copy-up).
//!
//! Both sides meet as a tar stream: [`tree`] archives a tree read through
//! descriptors (never following a symlink of the tree), and the stream is
//! applied with vessel-image's confined layer apply, which creates every
//! entry under a directory descriptor with `RESOLVE_IN_ROOT`. Paths inside
//! a container are resolved in the container's root ([`view`]), so a
//! symlink in the container cannot make `cp` read or write a host file.

mod cp;
pub mod tree;
mod view;

pub use cp::{CopyOptions, Endpoint};

use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use vessel_image::apply::{apply_layer, ApplyError, ApplyOptions};
use vessel_runtime::sys::resolve::fd_path;

/// Failures of a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A path to copy from does not exist.
    #[error("Could not find the file {0} in the {1}")]
    NotFound(String, &'static str),
    /// The paths do not fit docker's copy rules.
    #[error("{0}")]
    Invalid(String),
    /// Reading the source failed.
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] io::Error),
    /// Writing the archive failed.
    #[error("cannot archive {0}")]
    Write(PathBuf, #[source] io::Error),
    /// A file whose name overlayfs layers use for deletions.
    #[error("cannot copy {0}: names starting with .wh. are overlay whiteout markers")]
    Whiteout(PathBuf),
    /// Extracting at the destination failed.
    #[error("cannot extract into {0}")]
    Extract(String, #[source] ApplyError),
    /// Preparing the container's filesystem view failed.
    #[error("cannot mount the container's filesystem")]
    View(#[source] Box<crate::EngineError>),
    /// A system call failed.
    #[error("{0}")]
    Sys(String, #[source] io::Error),
}

impl CopyError {
    fn read(path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |e| CopyError::Read(path, e)
    }

    fn write(path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |e| CopyError::Write(path, e)
    }
}

/// Apply the tar stream `reader` into the directory open as `dir`
/// (confined to it). `same_owner` keeps the archive's uid/gid; otherwise
/// entries belong to the caller. `shown` names the directory in errors.
pub fn extract_into<R: Read>(
    reader: R,
    dir: BorrowedFd<'_>,
    same_owner: bool,
    shown: &str,
) -> Result<(), CopyError> {
    let opts = ApplyOptions {
        same_owner,
        expected_diff_id: None,
    };
    // /proc/self/fd/N names exactly the directory the descriptor holds.
    apply_layer(reader, Path::new(&fd_path(dir)), &opts)
        .map(drop)
        .map_err(|e| CopyError::Extract(shown.to_owned(), e))
}

/// Archive with `produce` on a thread and extract into `dir` as it comes.
pub fn pipe_into(
    produce: impl FnOnce(&mut tar::Builder<io::PipeWriter>) -> Result<(), CopyError> + Send,
    dir: BorrowedFd<'_>,
    same_owner: bool,
    shown: &str,
) -> Result<(), CopyError> {
    let (reader, writer) = io::pipe().map_err(|e| CopyError::Sys("pipe".into(), e))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut b = tar::Builder::new(writer);
            produce(&mut b)?;
            b.finish().map_err(CopyError::write(Path::new("archive")))
        });
        let extracted = extract_into(reader, dir, same_owner, shown);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(CopyError::Invalid("the archiving thread panicked".into())));
        // The producer's error explains a truncated stream better.
        produced.and(extracted)
    })
}
