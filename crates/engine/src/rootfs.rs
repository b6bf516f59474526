//! A container's root filesystem: a writable snapshot on top of the image's
//! layers (overlayfs), mounted at `<root>/containers/<id>/rootfs` on the host
//! for as long as the container exists.

use std::os::fd::AsFd;
use std::path::Path;

use vessel_image::mount::{mount_all, unmount};
use vessel_image::snapshot::SnapshotError;
use vessel_image::ImageStore;

use crate::error::{EngineError, Result};

/// Create container `id`'s writable snapshot on `top` (the image's top layer;
/// `None` for an image without layers) and mount it on `target`.
pub fn prepare(images: &ImageStore, id: &str, top: Option<&str>, target: &Path) -> Result<()> {
    let snap_err = |source| EngineError::Snapshot {
        id: id.to_owned(),
        source,
    };
    let mounts = images.snapshots().prepare(id, top).map_err(snap_err)?;
    let mounted = std::fs::create_dir_all(target)
        .map_err(EngineError::io("cannot create", target))
        .and_then(|()| {
            mount_all(&mounts, target).map_err(|source| EngineError::Mount {
                id: id.to_owned(),
                source,
            })
        });
    if mounted.is_err() {
        let _ = images.snapshots().remove(id);
    }
    mounted
}

/// Mount the existing snapshot again if `target` is not mounted (after a
/// reboot, mounts are gone but snapshots remain).
pub fn ensure_mounted(images: &ImageStore, id: &str, target: &Path) -> Result<()> {
    if is_mountpoint(target)? {
        return Ok(());
    }
    let mounts = images
        .snapshots()
        .mounts(id)
        .map_err(|source| EngineError::Snapshot {
            id: id.to_owned(),
            source,
        })?;
    std::fs::create_dir_all(target).map_err(EngineError::io("cannot create", target))?;
    mount_all(&mounts, target).map_err(|source| EngineError::Mount {
        id: id.to_owned(),
        source,
    })
}

/// Unmount `target` (if mounted) and remove container `id`'s snapshot (if any).
pub fn remove(images: &ImageStore, id: &str, target: &Path) -> Result<()> {
    while is_mountpoint(target)? {
        unmount(target).map_err(|source| EngineError::Mount {
            id: id.to_owned(),
            source,
        })?;
    }
    match images.snapshots().remove(id) {
        Ok(()) | Err(SnapshotError::NotFound(_)) => Ok(()),
        Err(source) => Err(EngineError::Snapshot {
            id: id.to_owned(),
            source,
        }),
    }
}

/// Make `dir` (absolute, inside the container) exist in the mounted rootfs,
/// resolving it inside the rootfs, as docker does for the working directory.
pub fn ensure_dir(rootfs: &Path, dir: &str) -> Result<()> {
    let root = std::fs::File::open(rootfs).map_err(EngineError::io("cannot open", rootfs))?;
    vessel_runtime::sys::resolve::mkdir_all_in(root.as_fd(), Path::new(dir), 0o755)
        .map(drop)
        .map_err(EngineError::io(
            "cannot create the working directory in",
            rootfs.join(dir.trim_start_matches('/')),
        ))
}

/// Whether something is mounted exactly on `path` (per /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> Result<bool> {
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(EngineError::io("cannot read", info))?;
    let want = path.to_string_lossy();
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn root_is_a_mountpoint_and_a_tempdir_is_not() {
        assert!(is_mountpoint(Path::new("/")).unwrap());
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_mountpoint(&tmp.path().join("x")).unwrap());
    }
}
