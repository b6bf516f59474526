//! A directory tree as a tar stream, read through descriptors only.
//!
//! The tree is untrusted (a container's files): every step opens one name
//! relative to its parent's descriptor with `openat2(RESOLVE_IN_ROOT)` and
//! `O_NOFOLLOW`, so a symlink is archived as a symlink and never followed,
//! and a directory swapped for a symlink while the walk runs leads nowhere
//! outside the tree.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use vessel_runtime::sys::resolve::{fd_path, open_in_root, reopen};

use super::CopyError;
use vessel_image::apply::WHITEOUT_PREFIX;

/// Append `name` (one component in `parent`, not followed if a symlink)
/// and, for a directory, everything below it, as `path` in the archive.
pub fn append_tree<W: Write>(
    out: &mut tar::Builder<W>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> Result<(), CopyError> {
    let fd = open_in_root(parent, Path::new(name), libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(CopyError::read(path))?;
    append_fd(out, fd, path)
}

/// Append what `fd` is open on (a directory with everything below it) as
/// `path`.
pub fn append_opened<W: Write>(
    out: &mut tar::Builder<W>,
    fd: BorrowedFd<'_>,
    path: &Path,
) -> Result<(), CopyError> {
    let fd = fd.try_clone_to_owned().map_err(CopyError::read(path))?;
    append_fd(out, fd, path)
}

fn append_fd<W: Write>(
    out: &mut tar::Builder<W>,
    fd: OwnedFd,
    path: &Path,
) -> Result<(), CopyError> {
    if path
        .file_name()
        .is_some_and(|n| n.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
    {
        // The extracting side reads these as overlay whiteouts (deletions).
        return Err(CopyError::Whiteout(path.to_owned()));
    }
    let file = File::from(fd);
    let md = file.metadata().map_err(CopyError::read(path))?;
    let ft = md.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid().into());
    h.set_gid(md.gid().into());
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    let io_err = CopyError::write(path);
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        out.append_data(&mut h, path, io::empty()).map_err(io_err)?;
        let mut names: Vec<OsString> = std::fs::read_dir(fd_path(file.as_fd()))
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(CopyError::read(path))?;
        names.sort();
        for n in names {
            append_tree(out, file.as_fd(), &n, &path.join(&n))?;
        }
    } else if ft.is_file() {
        let content =
            File::from(reopen(file.as_fd(), libc::O_RDONLY).map_err(CopyError::read(path))?);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(md.len());
        // A file that changes size meanwhile would break the archive: read
        // exactly the size announced.
        let reader = io::Read::take(content, md.len());
        out.append_data(&mut h, path, Padded::new(reader, md.len()))
            .map_err(io_err)?;
    } else if ft.is_symlink() {
        let target = nix::fcntl::readlinkat(Some(file.as_raw_fd()), "")
            .map_err(|e| CopyError::read(path)(e.into()))?;
        h.set_entry_type(tar::EntryType::Symlink);
        out.append_link(&mut h, path, PathBuf::from(target))
            .map_err(io_err)?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        h.set_entry_type(if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        });
        let rdev = md.rdev();
        h.set_device_major(libc::major(rdev)).map_err(io_err)?;
        h.set_device_minor(libc::minor(rdev))
            .map_err(CopyError::write(path))?;
        out.append_data(&mut h, path, io::empty())
            .map_err(CopyError::write(path))?;
    }
    // Sockets are not archived (docker's archive skips them too).
    Ok(())
}

/// A reader that yields exactly `len` bytes: the inner reader's, then
/// zeros if the file shrank while it was read.
struct Padded<R> {
    inner: R,
    left: u64,
}

impl<R> Padded<R> {
    fn new(inner: R, len: u64) -> Self {
        Padded { inner, left: len }
    }
}

impl<R: io::Read> io::Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}
