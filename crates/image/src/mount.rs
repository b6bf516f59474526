//! Performing the mounts a snapshotter describes (needs CAP_SYS_ADMIN).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::snapshot::Mount;

/// A mount failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// mount(2) failed.
    #[error("Cannot mount {fstype} on {target} (options {options})")]
    Mount {
        /// Filesystem type.
        fstype: String,
        /// Mount point.
        target: PathBuf,
        /// The options, joined.
        options: String,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// umount(2) failed.
    #[error("Cannot unmount {target}")]
    Unmount {
        /// Mount point.
        target: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
}

/// Mount `mounts` on `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    for m in mounts {
        let fail = |e: nix::Error| MountError::Mount {
            fstype: m.fstype.clone(),
            target: target.to_path_buf(),
            options: m.options.join(","),
            source: e.into(),
        };
        let ro = m.options.iter().any(|o| o == "ro");
        if m.fstype == "bind" {
            let mut flags = MsFlags::MS_BIND;
            if m.options.iter().any(|o| o == "rbind") {
                flags |= MsFlags::MS_REC;
            }
            mount(Some(&m.source), target, None::<&str>, flags, None::<&str>).map_err(fail)?;
            if ro {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(fail)?;
            }
        } else {
            let data: Vec<&str> = m
                .options
                .iter()
                .filter(|o| o.as_str() != "ro" && o.as_str() != "rw")
                .map(String::as_str)
                .collect();
            let flags = if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount(
                Some(&m.source),
                target,
                Some(m.fstype.as_str()),
                flags,
                Some(data.join(",").as_str()),
            )
            .map_err(fail)?;
        }
    }
    Ok(())
}

/// Unmount `target`.
///
/// A plain umount first. EBUSY can be transient and not ours: a container
/// being created at the same moment (a concurrent build step, another
/// `run`) copies every mount into its new mount namespace, and until it has
/// made its copies private the kernel counts them as busy peers of ours. So
/// a busy mount is retried for a short while and then detached (the mount
/// is ours alone; a lazy detach loses nothing once our writes are done).
pub fn unmount(target: &Path) -> Result<(), MountError> {
    const BUSY_RETRIES: u32 = 20;
    let fail = |e: nix::Error| MountError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    };
    for _ in 0..BUSY_RETRIES {
        match umount2(target, MntFlags::empty()) {
            Err(nix::Error::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(5)),
            other => return other.map_err(fail),
        }
    }
    umount2(target, MntFlags::MNT_DETACH).map_err(fail)
}
