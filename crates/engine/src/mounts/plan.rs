//! Resolving a container's mounts at creation, before anything is made:
//! the user's `-v`/`--mount` (which win), then `--volumes-from`, then the
//! image's VOLUME list; names for anonymous volumes; bind sources that
//! must exist. Then, under the volume store's lock, the volumes that do
//! not exist yet are created together with the container's record, so a
//! volume being removed is never attached to a container being made.

use oci_spec::image::Config as ImageConfig;

use super::parse::{self, MountRequest};
use super::{MountKind, MountPoint};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::names;
use crate::options::CreateOptions;
use crate::record::ContainerConfig;
use crate::volumes::VolumeStore;

fn invalid(option: &'static str, reason: String) -> EngineError {
    EngineError::InvalidOption { option, reason }
}

/// Fill `config.mounts` (and `config.tmpfs` for `--mount type=tmpfs`) from
/// the request and the image.
pub(crate) fn plan(
    engine: &Engine,
    image: Option<&ImageConfig>,
    opts: &CreateOptions,
    config: &mut ContainerConfig,
) -> Result<()> {
    let mut mounts = Vec::new();
    for v in &opts.volumes {
        mounts.push(parse::volume(v)?);
    }
    for m in &opts.mounts {
        match parse::mount(m)? {
            MountRequest::Point(p) => mounts.push(p),
            MountRequest::Tmpfs(t) => config.tmpfs.push(t),
        }
    }
    let mut taken: Vec<String> = config.tmpfs.iter().map(|t| t.destination.clone()).collect();
    for m in &mounts {
        if taken.contains(&m.destination) {
            return Err(invalid(
                "-v/--mount",
                format!("duplicate mount point {}", m.destination),
            ));
        }
        taken.push(m.destination.clone());
    }

    for spec in &opts.volumes_from {
        let (container, mode) = match spec.rsplit_once(':') {
            Some((c, m)) if matches!(m, "ro" | "rw") => (c, Some(m == "ro")),
            Some(_) => {
                return Err(invalid(
                    "--volumes-from",
                    format!("{spec:?}: expected CONTAINER[:ro|rw]"),
                ))
            }
            None => (spec.as_str(), None),
        };
        let id = engine.containers().resolve(container)?;
        for m in engine.containers().load(&id)?.config.mounts {
            if taken.contains(&m.destination) {
                continue;
            }
            taken.push(m.destination.clone());
            mounts.push(MountPoint {
                read_only: mode.unwrap_or(m.read_only),
                ..m
            });
        }
    }

    let image_volumes = match image.and_then(|c| c.volumes().clone()) {
        Some(v) if !opts.no_image_volumes => v,
        _ => Default::default(),
    };
    for path in image_volumes {
        let dest = parse::destination("VOLUME (of the image)", &path, &path)?;
        if !taken.contains(&dest) {
            taken.push(dest.clone());
            mounts.push(parse::volume(&dest)?);
        }
    }

    for m in &mut mounts {
        match m.kind {
            MountKind::Volume if m.source.is_empty() => m.source = names::new_id()?,
            MountKind::Volume => {}
            MountKind::Bind => {
                // docker's -v would create a missing host path; a typo then
                // silently becomes an empty directory, so vessel refuses it.
                if let Err(e) = std::fs::metadata(&m.source) {
                    return Err(invalid(
                        "-v/--mount",
                        format!(
                            "bind source path {} does not exist or cannot be used: {e}",
                            m.source
                        ),
                    ));
                }
            }
        }
    }
    config.mounts = mounts;
    Ok(())
}

/// Under the volume lock: create the volumes `mounts` name that do not
/// exist yet, then run `add` (which writes the container's record); if it
/// fails, the volumes made here are removed again. Returns their names.
pub(crate) fn reserve_volumes(
    volumes: &VolumeStore,
    mounts: &[MountPoint],
    add: impl FnOnce() -> Result<()>,
) -> Result<Vec<String>> {
    let lock = volumes.lock()?;
    let mut made = Vec::new();
    let result = (|| {
        for m in mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let (_, created) = volumes.create(&lock, &m.source, &m.labels, m.anonymous)?;
            if created {
                made.push(m.source.clone());
            }
        }
        add()
    })();
    if let Err(e) = result {
        for name in &made {
            let _ = volumes.remove(&lock, name);
        }
        return Err(e);
    }
    Ok(made)
}

/// Remove volumes a failed creation made (they are not in use: the
/// container's record is gone, and the lock makes the check exact).
pub(crate) fn release_volumes(engine: &Engine, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let Ok(lock) = engine.volumes().lock() else {
        return;
    };
    for name in names {
        if engine.volume_users(&lock, name).is_ok_and(|u| u.is_empty()) {
            let _ = engine.volumes().remove(&lock, name);
        }
    }
}
