//! Names and tags: `registry/repo:tag` (or `registry/repo@digest`) -> the
//! descriptor of a manifest or index.
//!
//! The tag store *is* the layout's `index.json`: one descriptor per name,
//! with the full name in the `org.opencontainers.image.ref.name` annotation,
//! so the store root stays a valid OCI layout that other tools can read.
//! Every change is a read-modify-write under an exclusive `flock` on
//! `index.lock`, ending with an atomic rename; readers need no lock.

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
    /// Returns what `f` returned.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Target>) -> Result<T, TagError>,
    ) -> Result<T, TagError> {
        let _lock = FileLock::exclusive(&self.lock).map_err(|source| TagError::Io {
            op: "lock",
            path: self.lock.clone(),
            source,
        })?;
        let mut index = self.read()?;
        let mut map = to_map(&index);
        let out = f(&mut map)?;
        index.manifests = map
            .into_iter()
            .map(|(name, target)| Entry {
                target,
                annotations: BTreeMap::from([(REF_NAME.to_string(), name)]),
            })
            .collect();
        index.media_type = Some(crate::manifest::OCI_INDEX.into());
        let data = serde_json::to_vec_pretty(&index).expect("index serializes");
        write_atomic(&self.index, &data).map_err(|source| TagError::Io {
            op: "write",
            path: self.index.clone(),
            source,
        })?;
        Ok(out)
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
