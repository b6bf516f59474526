//! A container's mounts in its rootfs (mount points, copy-up into new
//! volumes) and in its OCI spec.

use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder, Spec};
use vessel_runtime::sys::resolve::{create_file_in, mkdir_all_in};

use super::{MountKind, MountPoint};
use crate::error::{EngineError, Result};
use crate::volumes::{copy_up, VolumeStore};

/// The host path mounted for `m`.
fn host_source(volumes: &VolumeStore, m: &MountPoint) -> String {
    match m.kind {
        MountKind::Bind => m.source.clone(),
        MountKind::Volume => volumes.data_dir(&m.source).display().to_string(),
    }
}

/// Before the container first runs: fill empty volumes from the image's
/// content (unless `nocopy`) and create every mount point in the mounted
/// rootfs, resolved inside it (a file for a bind of a file).
pub(crate) fn prepare(volumes: &VolumeStore, rootfs: &Path, mounts: &[MountPoint]) -> Result<()> {
    let root = std::fs::File::open(rootfs).map_err(EngineError::io("cannot open", rootfs))?;
    for m in mounts {
        if m.kind == MountKind::Volume && !m.no_copy {
            copy_up(volumes, &m.source, root.as_fd(), &m.destination)?;
        }
        let dest = Path::new(&m.destination);
        let is_file =
            m.kind == MountKind::Bind && std::fs::metadata(&m.source).is_ok_and(|md| !md.is_dir());
        let made = if is_file {
            create_file_in(root.as_fd(), dest)
        } else {
            mkdir_all_in(root.as_fd(), dest, 0o755)
        };
        made.map_err(EngineError::io(
            "cannot create the mount point in",
            rootfs.join(m.destination.trim_start_matches('/')),
        ))?;
    }
    Ok(())
}

/// Add the bind mounts and volumes to `spec` (docker's options: `rbind`,
/// a propagation, `ro`). A user's mount replaces a default mount at the
/// same place, and mounts are ordered parents first.
pub(crate) fn add_to_spec(
    spec: &mut Spec,
    volumes: &VolumeStore,
    mounts: &[MountPoint],
) -> Result<()> {
    let mut all: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    all.retain(|d| {
        !mounts
            .iter()
            .any(|m| Path::new(&m.destination) == d.destination())
    });
    for m in mounts {
        let mut options = vec!["rbind".to_owned()];
        let propagation = m.propagation();
        options.push(
            if propagation.is_empty() {
                "rprivate"
            } else {
                propagation
            }
            .to_owned(),
        );
        options.push(if m.read_only { "ro" } else { "rw" }.to_owned());
        let mount = MountBuilder::default()
            .destination(&m.destination)
            .typ("bind")
            .source(host_source(volumes, m))
            .options(options)
            .build()
            .map_err(|e| EngineError::InvalidOption {
                option: "-v/--mount",
                reason: format!("{}: {e}", m.destination),
            })?;
        all.push(mount);
    }
    // Stable: equal depths keep their order (defaults before the user's).
    all.sort_by_key(|m| m.destination().components().count());
    spec.set_mounts(Some(all));
    Ok(())
}

/// The host path mounted for `m` (what `inspect` shows as `Source`).
pub fn source_path(volumes: &VolumeStore, m: &MountPoint) -> String {
    host_source(volumes, m)
}
