//! docker's copy-up: a volume that is empty when a container first mounts
//! it receives the image's content at the mount's path, with the owner and
//! mode of that directory.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use vessel_runtime::sys::resolve::open_in_root;

use super::{VolumeError, VolumeStore};
use crate::copy::{self, tree, CopyError};
use crate::error::{EngineError, Result};
use crate::store::lock;

/// Fill volume `name` from `dest` (absolute, inside the container's root
/// open as `root`, resolved there) if the volume is empty and `dest` is a
/// directory. Concurrent first uses copy once (a per-volume lock).
pub fn copy_up(volumes: &VolumeStore, name: &str, root: BorrowedFd<'_>, dest: &str) -> Result<()> {
    let _lock = lock(&volumes.copy_lock(name))?;
    let data = volumes.data_dir(name);
    let mut entries = std::fs::read_dir(&data).map_err(EngineError::io("cannot read", &data))?;
    if entries.next().is_some() {
        return Ok(());
    }
    let src = match open_in_root(root, Path::new(dest), libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(failed(name, dest, CopyError::Read(dest.into(), e))),
    };
    let target = File::open(&data).map_err(EngineError::io("cannot open", &data))?;
    let shown = data.display().to_string();
    copy::pipe_into(
        |b| tree::append_opened(b, src.as_fd(), Path::new(".")),
        target.as_fd(),
        true,
        &shown,
    )
    .map_err(|e| failed(name, dest, e))?;
    // The tar's root entry is not applied: the volume's root takes the
    // directory's owner and mode here.
    let md = File::from(src)
        .metadata()
        .map_err(|e| failed(name, dest, CopyError::Read(dest.into(), e)))?;
    let fd = target.as_raw_fd();
    nix::unistd::fchown(
        fd,
        Some(Uid::from_raw(md.uid())),
        Some(Gid::from_raw(md.gid())),
    )
    .and_then(|()| nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(md.mode() & 0o7777)))
    .map_err(|e| {
        failed(
            name,
            dest,
            CopyError::Sys(format!("chown/chmod {shown}"), e.into()),
        )
    })
}

fn failed(name: &str, dest: &str, e: CopyError) -> EngineError {
    VolumeError::CopyUp {
        name: name.to_owned(),
        path: dest.to_owned(),
        source: Box::new(e),
    }
    .into()
}
