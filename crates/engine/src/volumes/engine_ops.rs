//! `vessel volume create|ls|inspect|rm|prune`, and the volume side of
//! `rm -v`: the store's operations with the in-use checks that need the
//! container records.

use std::collections::{BTreeMap, BTreeSet};

use super::{validate_name, VolumeError, VolumeLock, VolumeRecord};
use crate::engine::Engine;
use crate::error::Result;
use crate::mounts::{MountKind, MountPoint};

/// A volume and the containers that use it (`volume ls`).
#[derive(Debug, Clone)]
pub struct VolumeUse {
    /// The volume.
    pub volume: VolumeRecord,
    /// Names of the containers whose mounts name it.
    pub containers: Vec<String>,
}

/// What `volume prune` removed.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    /// The volumes' names.
    pub names: Vec<String>,
    /// Bytes of their data.
    pub bytes: u64,
}

fn volume_names(mounts: &[MountPoint]) -> impl Iterator<Item = &str> {
    mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume)
        .map(|m| m.source.as_str())
}

impl Engine {
    /// Every volume name in use, with its containers' names.
    fn usage(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.containers().list()? {
            for v in volume_names(&r.config.mounts).collect::<BTreeSet<_>>() {
                out.entry(v.to_owned()).or_default().push(r.name.clone());
            }
        }
        Ok(out)
    }

    /// The containers using volume `name` (exact while `_lock` is held).
    pub(crate) fn volume_users(&self, _lock: &VolumeLock, name: &str) -> Result<Vec<String>> {
        Ok(self.usage()?.remove(name).unwrap_or_default())
    }

    /// `vessel volume create [--label] [NAME]`: a random name when none is
    /// given; an existing name is returned unchanged (docker's behaviour).
    pub fn volume_create(
        &self,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        let name = match name {
            Some(n) => {
                validate_name(n)?;
                n.to_owned()
            }
            None => crate::names::new_id()?,
        };
        let lock = self.volumes().lock()?;
        Ok(self.volumes().create(&lock, &name, labels, false)?.0)
    }

    /// `vessel volume inspect`.
    pub fn volume_inspect(&self, name: &str) -> Result<VolumeRecord> {
        self.volumes().get(name)
    }

    /// `vessel volume ls`: every volume with its users.
    pub fn volume_list(&self) -> Result<Vec<VolumeUse>> {
        let mut usage = self.usage()?;
        Ok(self
            .volumes()
            .list()?
            .into_iter()
            .map(|v| VolumeUse {
                containers: usage.remove(&v.name).unwrap_or_default(),
                volume: v,
            })
            .collect())
    }

    /// `vessel volume rm [-f]`: refused while a container (running or not)
    /// uses it; `force` only makes a missing volume no error.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let lock = self.volumes().lock()?;
        match self.volumes().get(name) {
            Err(crate::EngineError::Volume(VolumeError::NotFound(_))) if force => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let containers = self.volume_users(&lock, name)?;
        if !containers.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                containers,
            }
            .into());
        }
        self.volumes().remove(&lock, name)
    }

    /// `vessel volume prune [-a]`: remove unused anonymous volumes (every
    /// unused volume with `all`), as docker 23+.
    pub fn volume_prune(&self, all: bool) -> Result<Pruned> {
        let lock = self.volumes().lock()?;
        let usage = self.usage()?;
        let mut out = Pruned::default();
        for v in self.volumes().list()? {
            if usage.contains_key(&v.name) || !(all || v.anonymous) {
                continue;
            }
            let bytes = self.volumes().size(&v.name);
            self.volumes().remove(&lock, &v.name)?;
            out.bytes += bytes;
            out.names.push(v.name);
        }
        Ok(out)
    }

    /// `rm -v` (and `--rm`): remove the anonymous volumes among `mounts`
    /// that no other container uses (docker keeps a shared one silently).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) -> Result<()> {
        let anonymous: Vec<&str> = mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume && m.anonymous)
            .map(|m| m.source.as_str())
            .collect();
        if anonymous.is_empty() {
            return Ok(());
        }
        let lock = self.volumes().lock()?;
        for name in anonymous {
            if self.volume_users(&lock, name)?.is_empty() {
                match self.volumes().remove(&lock, name) {
                    Err(crate::EngineError::Volume(VolumeError::NotFound(_))) | Ok(()) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}
