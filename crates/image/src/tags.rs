//! Names and tags: `registry/repo:tag` (or `registry/repo@digest`) -> the
//! descriptor of a manifest or index.
//!
//! The tag store *is* the layout's `index.json`: one descriptor per name,
//! with the full name in the `org.opencontainers.image.ref.name` annotation,
//! so the store root stays a valid OCI layout that other tools can read.
//! Every change is a read-modify-write under an exclusive `flock` on
//! `index.lock`, ending with an atomic rename; readers need no lock.
//!
//! Entries *without* a name are untagged images that are kept (docker's
//! dangling `<none>` images): an image that loses its last name because the
//! name moved to another image (a load or a tag), an untagged import or
//! load, an image a container still uses after a forced `rmi`. They are GC
//! roots until `image prune` drops them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::{write_atomic, FileLock};
use crate::reference::Reference;

/// The annotation that carries a descriptor's name in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Failures of the tag store.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// A file of the tag store could not be used.
    #[error("Tag store: {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// `index.json` does not parse.
    #[error("Tag store {path} is corrupt")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// No such name.
    #[error("No such image: {0}")]
    NotFound(String),
}

/// What a name points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Media type of the manifest or index.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    target: Target,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// The name -> manifest map of a store root.
#[derive(Debug, Clone)]
pub struct TagStore {
    index: PathBuf,
    lock: PathBuf,
}

/// The key a reference is stored under: `name:tag` if it has a tag, else
/// `name@digest`.
pub fn key(r: &Reference) -> String {
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{}:{t}", r.name()),
        (None, Some(d)) => format!("{}@{d}", r.name()),
        (None, None) => format!("{}:latest", r.name()),
    }
}

impl TagStore {
    /// The tag store of the layout at `root` (`index.json` appears on the
    /// first change).
    pub fn new(root: &Path) -> Self {
        TagStore {
            index: root.join("index.json"),
            lock: root.join("index.lock"),
        }
    }

    fn read(&self) -> Result<IndexFile, TagError> {
        match std::fs::read(&self.index) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| TagError::Corrupt {
                path: self.index.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(IndexFile {
                schema_version: 2,
                media_type: Some(crate::manifest::OCI_INDEX.into()),
                manifests: Vec::new(),
            }),
            Err(source) => Err(TagError::Io {
                op: "read",
                path: self.index.clone(),
                source,
            }),
        }
    }

    /// Apply `f` to the map under the lock and write the result atomically.
    /// Returns what `f` returned. Untagged entries are kept as they are.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Target>) -> Result<T, TagError>,
    ) -> Result<T, TagError> {
        self.update_index(|index| f(&mut index.names))
    }

    /// Apply `f` to the names and untagged entries under the lock and write
    /// the result atomically (untagged entries that also have a name, or
    /// appear twice, are dropped).
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, TagError>,
    ) -> Result<T, TagError> {
        let _lock = FileLock::exclusive(&self.lock).map_err(|source| TagError::Io {
            op: "lock",
            path: self.lock.clone(),
            source,
        })?;
        let mut file = self.read()?;
        let mut index = to_index(&file);
        let out = f(&mut index)?;
        index.normalize();
        file.manifests = index
            .names
            .into_iter()
            .map(|(name, target)| Entry {
                target,
                annotations: BTreeMap::from([(REF_NAME.to_string(), name)]),
            })
            .chain(index.untagged.into_iter().map(|target| Entry {
                target,
                annotations: BTreeMap::new(),
            }))
            .collect();
        file.media_type = Some(crate::manifest::OCI_INDEX.into());
        let data = serde_json::to_vec_pretty(&file).expect("index serializes");
        write_atomic(&self.index, &data).map_err(|source| TagError::Io {
            op: "write",
            path: self.index.clone(),
            source,
        })?;
        Ok(out)
    }

    /// Names and untagged entries.
    pub fn index(&self) -> Result<Index, TagError> {
        Ok(to_index(&self.read()?))
    }

    /// Remove temporary files a killed writer left beside `index.json`
    /// (every write happens under the lock, so under it they are debris).
    pub(crate) fn remove_debris(&self) -> Result<usize, TagError> {
        let _lock = FileLock::exclusive(&self.lock).map_err(|source| TagError::Io {
            op: "lock",
            path: self.lock.clone(),
            source,
        })?;
        let dir = self.index.parent().unwrap_or(Path::new("."));
        let mut n = 0;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(".index.json.tmp")
            {
                let _ = std::fs::remove_file(e.path());
                n += 1;
            }
        }
        Ok(n)
    }

    /// Every name and its target.
    pub fn list(&self) -> Result<BTreeMap<String, Target>, TagError> {
        Ok(to_map(&self.read()?))
    }

    /// What `r` points at, if anything.
    pub fn get(&self, r: &Reference) -> Result<Option<Target>, TagError> {
        Ok(self.list()?.remove(&key(r)))
    }

    /// Point `r` at `target` (replacing what it pointed at).
    pub fn set(&self, r: &Reference, target: Target) -> Result<(), TagError> {
        self.update(|m| {
            m.insert(key(r), target);
            Ok(())
        })
    }

    /// Remove the name `r`; returns what it pointed at.
    pub fn remove(&self, r: &Reference) -> Result<Target, TagError> {
        self.update(|m| {
            m.remove(&key(r))
                .ok_or_else(|| TagError::NotFound(r.familiar()))
        })
    }
}

/// Everything `index.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Name (as [`key`] makes it) -> target.
    pub names: BTreeMap<String, Target>,
    /// Untagged images kept (docker's dangling images).
    pub untagged: Vec<Target>,
}

impl Index {
    /// Whether some name points at `digest`.
    pub fn is_named(&self, digest: &Digest) -> bool {
        self.names.values().any(|t| &t.digest == digest)
    }

    /// Point the name `key` at `target`. The image it pointed at before,
    /// if this was its last name, is kept as an untagged entry (docker
    /// makes it a dangling image rather than deleting it).
    pub fn retarget(&mut self, key: String, target: Target) {
        if let Some(old) = self.names.insert(key, target) {
            if !self.is_named(&old.digest) {
                self.add_untagged(old);
            }
        }
    }

    /// Keep `target` as an untagged image (no-op if it has a name or is
    /// already kept).
    pub fn add_untagged(&mut self, target: Target) {
        if !self.is_named(&target.digest)
            && !self.untagged.iter().any(|t| t.digest == target.digest)
        {
            self.untagged.push(target);
        }
    }

    /// Every target, named or not, once each.
    pub fn targets(&self) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        for t in self.names.values().chain(&self.untagged) {
            if !out.iter().any(|o| o.digest == t.digest) {
                out.push(t.clone());
            }
        }
        out
    }

    fn normalize(&mut self) {
        let untagged = std::mem::take(&mut self.untagged);
        for t in untagged {
            self.add_untagged(t);
        }
    }
}

fn to_index(file: &IndexFile) -> Index {
    let mut index = Index {
        names: to_map(file),
        untagged: Vec::new(),
    };
    for e in &file.manifests {
        if !e.annotations.contains_key(REF_NAME) {
            index.add_untagged(e.target.clone());
        }
    }
    index
}

fn to_map(index: &IndexFile) -> BTreeMap<String, Target> {
    index
        .manifests
        .iter()
        .filter_map(|e| Some((e.annotations.get(REF_NAME)?.clone(), e.target.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(n: u8) -> Target {
        Target {
            media_type: crate::manifest::OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: n as u64,
        }
    }

    #[test]
    fn set_get_remove_persist() {
        let dir = tempfile::tempdir().unwrap();
        let tags = TagStore::new(dir.path());
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(tags.get(&r).unwrap(), None);
        tags.set(&r, target(1)).unwrap();
        tags.set(&Reference::parse("localhost/x:2").unwrap(), target(2))
            .unwrap();
        let again = TagStore::new(dir.path());
        assert_eq!(again.get(&r).unwrap(), Some(target(1)));
        let names: Vec<_> = again.list().unwrap().into_keys().collect();
        assert_eq!(names, ["docker.io/library/busybox:latest", "localhost/x:2"]);
        // index.json is an OCI index with ref.name annotations.
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(
            v["manifests"][0]["annotations"][REF_NAME],
            "docker.io/library/busybox:latest"
        );
        assert_eq!(again.remove(&r).unwrap(), target(1));
        assert!(matches!(again.remove(&r), Err(TagError::NotFound(_))));
    }

    #[test]
    fn a_name_moved_away_leaves_its_image_untagged() {
        let dir = tempfile::tempdir().unwrap();
        let tags = TagStore::new(dir.path());
        tags.update_index(|i| {
            i.retarget("localhost/a:1".into(), target(1));
            i.retarget("localhost/b:1".into(), target(1));
            i.retarget("localhost/c:1".into(), target(3));
            // a moves, but b still names 1: nothing becomes untagged.
            i.retarget("localhost/a:1".into(), target(2));
            Ok(())
        })
        .unwrap();
        assert!(tags.index().unwrap().untagged.is_empty());
        tags.update_index(|i| {
            i.retarget("localhost/b:1".into(), target(2));
            Ok(())
        })
        .unwrap();
        let index = tags.index().unwrap();
        assert_eq!(index.untagged, vec![target(1)]);
        assert_eq!(index.names.len(), 3);
        // Plain `update` keeps untagged entries; naming one again drops it.
        tags.set(&Reference::parse("localhost/d").unwrap(), target(9))
            .unwrap();
        assert_eq!(tags.index().unwrap().untagged, vec![target(1)]);
        tags.set(&Reference::parse("localhost/e").unwrap(), target(1))
            .unwrap();
        assert!(tags.index().unwrap().untagged.is_empty());
        assert_eq!(tags.index().unwrap().targets().len(), 4);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let root = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let tags = TagStore::new(&root);
                    for j in 0..10u8 {
                        let r = Reference::parse(&format!("localhost/t{i}:v{j}")).unwrap();
                        tags.set(&r, target(i * 10 + j)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(TagStore::new(dir.path()).list().unwrap().len(), 80);
    }
}
