//! The volume directories and their records (see the module docs).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use super::{validate_name, VolumeError, VolumeRecord};
use crate::error::{EngineError, Result};
use crate::store::{lock, unique, write_json};

const RECORD: &str = "volume.json";
const DATA: &str = "_data";
const LOCK: &str = ".volumes.lock";
const COPY_LOCK: &str = "copy.lock";

/// The directory of all volumes (`<root>/volumes`).
#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: PathBuf,
}

/// Proof that `.volumes.lock` is held (create, remove, in-use checks).
#[derive(Debug)]
pub struct VolumeLock {
    _lock: Flock<File>,
}

impl VolumeStore {
    /// Open (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(EngineError::io("cannot create", &root))?;
        Ok(VolumeStore { root })
    }

    /// Take the store's lock; leftovers of crashed operations are swept.
    pub fn lock(&self) -> Result<VolumeLock> {
        let l = VolumeLock {
            _lock: lock(&self.root.join(LOCK))?,
        };
        self.sweep(&l);
        Ok(l)
    }

    /// The directory of volume `name`.
    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where volume `name`'s data lives (docker's `Mountpoint`).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir(name).join(DATA)
    }

    /// The lock file that serializes the first copy-up into volume `name`.
    pub(crate) fn copy_lock(&self, name: &str) -> PathBuf {
        self.dir(name).join(COPY_LOCK)
    }

    /// Volume `name`'s record.
    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        if validate_name(name).is_err() {
            return Err(VolumeError::NotFound(name.to_owned()).into());
        }
        let path = self.dir(name).join(RECORD);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_owned()).into())
            }
            Err(e) => return Err(EngineError::io("cannot read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|source| VolumeError::Corrupt { path, source }.into())
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(EngineError::io("cannot list", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(EngineError::io("cannot list", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_name(&name).is_err() {
                continue; // Hidden leftovers and the lock file.
            }
            match self.get(&name) {
                Ok(r) => out.push(r),
                Err(EngineError::Volume(VolumeError::NotFound(_))) => {} // Removed meanwhile.
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Create volume `name` unless it exists. Returns its record and
    /// whether this call created it (docker's `volume create` of an
    /// existing name succeeds and changes nothing).
    pub fn create(
        &self,
        _lock: &VolumeLock,
        name: &str,
        labels: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool)> {
        validate_name(name)?;
        match self.get(name) {
            Ok(r) => return Ok((r, false)),
            Err(EngineError::Volume(VolumeError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
        let record = VolumeRecord {
            name: name.to_owned(),
            created: vessel_runtime::state::now_rfc3339(),
            driver: "local".into(),
            labels: labels.clone(),
            anonymous,
        };
        let tmp = self.root.join(format!(".tmp-{}", unique()));
        let made = (|| {
            fs::create_dir(&tmp).map_err(EngineError::io("cannot create", &tmp))?;
            let data = tmp.join(DATA);
            fs::create_dir(&data).map_err(EngineError::io("cannot create", &data))?;
            write_json(&tmp.join(RECORD), &record)?;
            let dir = self.dir(name);
            fs::rename(&tmp, &dir).map_err(EngineError::io("cannot create", &dir))
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made.map(|()| (record, true))
    }

    /// Remove volume `name` and its data (the caller checked it is unused).
    pub fn remove(&self, _lock: &VolumeLock, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.dir(name);
        let doomed = self.root.join(format!(".rm-{}", unique()));
        fs::rename(&dir, &doomed).map_err(EngineError::io("cannot remove", &dir))?;
        fs::remove_dir_all(&doomed).map_err(EngineError::io("cannot remove", &doomed))
    }

    /// Bytes used by volume `name`'s data (files' sizes; for prune).
    pub fn size(&self, name: &str) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = fs::read_dir(p) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
                    _ => 0,
                })
                .sum()
        }
        walk(&self.data_dir(name))
    }

    /// Delete the hidden leftovers of operations a crash interrupted.
    fn sweep(&self, _lock: &VolumeLock) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".tmp-") || n.starts_with(".rm-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}
