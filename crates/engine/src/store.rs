//! The container store: one directory per container and a name index.
//!
//! ```text
//! <root>/containers/names.json       {"name": "id", ...}: the name index
//! <root>/containers/names.lock       flock for creating, renaming and removing
//! <root>/containers/<id>/container.json   the ContainerRecord
//! <root>/containers/<id>/lock        flock for read-modify-write of the record
//! <root>/containers/<id>/config.json the OCI bundle: runtime spec ...
//! <root>/containers/<id>/rootfs/     ... and the overlay mount of the writable layer
//! ```
//!
//! Every file is written to a temporary file, fsynced and renamed, so readers
//! (any number of vessel processes, without locks) see the old or the new
//! content, and a crash leaves one of the two. Creation holds `names.lock`
//! from the name check to the record's rename: a name maps to an id only once
//! that id's record exists or is being written under the lock. An index entry
//! whose record is missing (a crash in between) counts as free.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{EngineError, Result};
use crate::names;
use crate::record::ContainerRecord;

const RECORD: &str = "container.json";
const NAMES: &str = "names.json";
const NAMES_LOCK: &str = "names.lock";
const RECORD_LOCK: &str = "lock";

/// The directory of all containers.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    /// Open (creating if needed) the store at `root` (`<root>/containers`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(EngineError::io("cannot create", &root))?;
        Ok(ContainerStore { root })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id` (also its OCI bundle).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The rootfs mount point of container `id`.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.dir(id).join("rootfs")
    }

    /// Add a new container. Fails with `NameInUse` if the name is taken; then
    /// nothing was written. `record.id` must be fresh (the directory is
    /// created exclusively).
    pub fn create(&self, record: &ContainerRecord) -> Result<()> {
        let _lock = lock(&self.root.join(NAMES_LOCK))?;
        let mut index = self.read_index()?;
        if let Some(id) = index.get(&record.name) {
            if self.dir(id).join(RECORD).exists() {
                return Err(EngineError::NameInUse {
                    name: record.name.clone(),
                    id: id.clone(),
                });
            }
        }
        let dir = self.dir(&record.id);
        fs::create_dir(&dir).map_err(EngineError::io("cannot create", &dir))?;
        let written = write_json(&dir.join(RECORD), record).and_then(|()| {
            // Stale entries (records lost in a crash) are dropped on the way.
            index.retain(|_, id| self.dir(id).join(RECORD).exists());
            index.insert(record.name.clone(), record.id.clone());
            write_json(&self.root.join(NAMES), &index)
        });
        if written.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        written
    }

    /// Read container `id`'s record.
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        if !names::is_full_id(id) {
            return Err(EngineError::NotFound(id.to_owned()));
        }
        let path = self.dir(id).join(RECORD);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EngineError::NotFound(id.to_owned()))
            }
            Err(e) => return Err(EngineError::io("cannot read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|source| EngineError::Corrupt { path, source })
    }

    /// Change container `id`'s record under its lock; returns the new record.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerRecord) -> Result<()>,
    ) -> Result<ContainerRecord> {
        let _lock = lock(&self.dir(id).join(RECORD_LOCK))?;
        let mut record = self.load(id)?;
        change(&mut record)?;
        write_json(&self.dir(id).join(RECORD), &record)?;
        Ok(record)
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(EngineError::io("cannot list", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(EngineError::io("cannot list", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !names::is_full_id(&name) {
                continue;
            }
            match self.load(&name) {
                Ok(r) => out.push(r),
                // Removed meanwhile, or a directory whose record was never written.
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Find a container by full id, name, or unique id prefix (docker's order).
    pub fn resolve(&self, what: &str) -> Result<String> {
        if names::is_full_id(what) && self.dir(what).join(RECORD).exists() {
            return Ok(what.to_owned());
        }
        let name = what.strip_prefix('/').unwrap_or(what);
        if let Some(id) = self.read_index()?.get(name) {
            if self.dir(id).join(RECORD).exists() {
                return Ok(id.clone());
            }
        }
        let prefix_ok = !what.is_empty() && what.bytes().all(|b| b.is_ascii_hexdigit());
        if prefix_ok {
            let matches: Vec<String> = self
                .list()?
                .into_iter()
                .filter(|r| r.id.starts_with(what))
                .map(|r| r.id)
                .collect();
            match matches.len() {
                1 => return Ok(matches.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => return Err(EngineError::Ambiguous(what.to_owned())),
            }
        }
        Err(EngineError::NotFound(what.to_owned()))
    }

    /// Give container `id` the name `name` (validated by the caller).
    pub fn rename(&self, id: &str, name: &str) -> Result<()> {
        let _lock = lock(&self.root.join(NAMES_LOCK))?;
        let mut index = self.read_index()?;
        if let Some(other) = index.get(name) {
            if other != id && self.dir(other).join(RECORD).exists() {
                return Err(EngineError::NameInUse {
                    name: name.to_owned(),
                    id: other.clone(),
                });
            }
        }
        self.update(id, |r| {
            r.name = name.to_owned();
            Ok(())
        })?;
        index.retain(|_, v| v != id && self.dir(v).join(RECORD).exists());
        index.insert(name.to_owned(), id.to_owned());
        write_json(&self.root.join(NAMES), &index)
    }

    /// Remove container `id`'s record, directory and name. The directory must
    /// hold nothing mounted.
    pub fn remove(&self, id: &str) -> Result<()> {
        let _lock = lock(&self.root.join(NAMES_LOCK))?;
        let dir = self.dir(id);
        // Rename first: the container disappears at once for readers, and a
        // crash during the recursive removal leaves only a hidden directory.
        let doomed = self.root.join(format!(".rm-{id}-{}", unique()));
        fs::rename(&dir, &doomed).map_err(EngineError::io("cannot remove", &dir))?;
        let mut index = self.read_index()?;
        index.retain(|_, v| v != id && self.dir(v).join(RECORD).exists());
        write_json(&self.root.join(NAMES), &index)?;
        fs::remove_dir_all(&doomed).map_err(EngineError::io("cannot remove", &doomed))
    }

    fn read_index(&self) -> Result<BTreeMap<String, String>> {
        let path = self.root.join(NAMES);
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|source| EngineError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(EngineError::io("cannot read", &path)(e)),
        }
    }
}

/// An exclusive flock on `path` (created if needed), held until dropped.
pub(crate) fn lock(path: &Path) -> Result<Flock<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(EngineError::io("cannot open lock", path))?;
    loop {
        match Flock::lock(
            file.try_clone()
                .map_err(EngineError::io("cannot lock", path))?,
            FlockArg::LockExclusive,
        ) {
            Ok(l) => return Ok(l),
            Err((_, nix::Error::EINTR)) => continue,
            Err((_, e)) => {
                return Err(EngineError::Io {
                    op: "cannot lock",
                    path: path.to_owned(),
                    source: e.into(),
                })
            }
        }
    }
}

pub(crate) fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write `value` as JSON to `path` through a fsynced temporary file and a rename.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).expect("engine metadata serializes");
    write_atomic(path, &data)
}

/// Write `data` to `path` through a fsynced temporary file and a rename.
///
/// The directory is fsynced only when the rename creates a new name. A rename
/// over an existing file is atomic but, until the directory reaches the
/// disk, a crash may bring back the previous version: for a record or the
/// name index that is a state vessel already reconciles (a record saying
/// "running" whose process is gone is read as exited; an index entry whose
/// record is gone counts as free), so the second fsync on every state change
/// (a run's hot path: created, running, exited, removed) buys nothing.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let replacing = path.exists();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", unique()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(EngineError::io("cannot create", &tmp))?;
        f.write_all(data)
            .map_err(EngineError::io("cannot write", &tmp))?;
        f.sync_all().map_err(EngineError::io("cannot sync", &tmp))?;
        fs::rename(&tmp, path).map_err(EngineError::io("cannot rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if replacing {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(EngineError::io("cannot sync", parent))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ContainerConfig, ContainerState};

    fn record(name: &str) -> ContainerRecord {
        ContainerRecord {
            id: names::new_id().unwrap(),
            name: name.to_owned(),
            created: vessel_runtime::state::now_rfc3339(),
            image: "docker.io/library/busybox:latest".into(),
            image_id: format!("sha256:{}", "ab".repeat(32)),
            config: ContainerConfig::default(),
            state: ContainerState::created(),
        }
    }

    #[test]
    fn create_load_update_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        let a = record("web");
        store.create(&a).unwrap();
        assert_eq!(store.load(&a.id).unwrap(), a);
        let b = record("db");
        store.create(&b).unwrap();
        let updated = store
            .update(&a.id, |r| {
                r.state.pid = 42;
                Ok(())
            })
            .unwrap();
        assert_eq!(updated.state.pid, 42);
        assert_eq!(store.load(&a.id).unwrap().state.pid, 42);
        let ids: Vec<_> = store.list().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 2);
        store.remove(&a.id).unwrap();
        assert!(matches!(store.load(&a.id), Err(EngineError::NotFound(_))));
        assert!(matches!(
            store.resolve("web"),
            Err(EngineError::NotFound(_))
        ));
        assert_eq!(store.list().unwrap(), vec![b]);
        // No temporary or doomed files are left.
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn names_are_unique_and_freed_by_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        let a = record("web");
        store.create(&a).unwrap();
        let b = record("web");
        match store.create(&b) {
            Err(EngineError::NameInUse { name, id }) => {
                assert_eq!(name, "web");
                assert_eq!(id, a.id);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !store.dir(&b.id).exists(),
            "a refused create writes nothing"
        );
        store.remove(&a.id).unwrap();
        store.create(&b).unwrap();
        assert_eq!(store.resolve("web").unwrap(), b.id);
    }

    #[test]
    fn resolve_by_id_name_and_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        let mut a = record("alpha");
        a.id = format!("aa{}", "0".repeat(62));
        let mut b = record("beta");
        b.id = format!("ab{}", "0".repeat(62));
        store.create(&a).unwrap();
        store.create(&b).unwrap();
        assert_eq!(store.resolve(&a.id).unwrap(), a.id);
        assert_eq!(store.resolve("alpha").unwrap(), a.id);
        assert_eq!(store.resolve("/beta").unwrap(), b.id);
        assert_eq!(store.resolve("aa").unwrap(), a.id);
        assert!(matches!(store.resolve("a"), Err(EngineError::Ambiguous(_))));
        assert!(matches!(store.resolve("ff"), Err(EngineError::NotFound(_))));
        assert!(matches!(
            store.resolve("gamma"),
            Err(EngineError::NotFound(_))
        ));
    }

    #[test]
    fn a_stale_index_entry_does_not_hold_the_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        // A crash after the index was written but before the record was.
        let ghost = names::new_id().unwrap();
        write_json(
            &tmp.path().join(NAMES),
            &BTreeMap::from([("web".to_string(), ghost)]),
        )
        .unwrap();
        let a = record("web");
        store.create(&a).unwrap();
        assert_eq!(store.resolve("web").unwrap(), a.id);
    }

    #[test]
    fn corrupt_record_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        let a = record("web");
        store.create(&a).unwrap();
        fs::write(store.dir(&a.id).join(RECORD), b"{").unwrap();
        match store.load(&a.id) {
            Err(e @ EngineError::Corrupt { .. }) => {
                assert!(e.to_string().contains(&a.id), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn concurrent_creates_with_one_name_admit_exactly_one() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || {
                    ContainerStore::open(&root)
                        .unwrap()
                        .create(&record("same"))
                        .is_ok()
                })
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|ok| *ok)
            .count();
        // Eight more with distinct names all succeed.
        let store = ContainerStore::open(&root).unwrap();
        for i in 0..8 {
            store.create(&record(&format!("n{i}"))).unwrap();
        }
        assert_eq!(ok, 1);
        assert_eq!(store.list().unwrap().len(), 9);
    }
}
