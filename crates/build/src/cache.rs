//! The build cache: `<root>/build-cache/<key>.json`, one file per step,
//! holding the stage's whole state after that step (config + layers).
//!
//! A step's key chains everything it depends on: the key of the step before
//! (the first one starts from the base image's ID, or `scratch`), the
//! instruction after variable substitution, and what else reaches the
//! result (for RUN the build arguments in its environment, for COPY/ADD a
//! digest of the source files' content and metadata, or the ID of the stage
//! or image copied from). Keys are chained rather than taken from the
//! config's digest because every step's history has a timestamp: a cached
//! rebuild gets back the very same configs, so the very same image ID.
//!
//! An entry is only a pointer to blobs: it is used only if every layer blob
//! is still in the store (a prune may have taken those of intermediate
//! steps); otherwise it is a miss and the step runs again.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::BuildError;
use crate::state::State;

/// Cache entries larger than this are ignored (a config is kilobytes).
const MAX_ENTRY: u64 = 8 << 20;

/// The key of a step: sha256 over the parent key, the instruction text and
/// the extra inputs, each length-prefixed so no two lists collide.
pub fn key(parent: &str, instruction: &str, extra: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"vessel-build-cache-v1\n");
    for part in [parent, instruction]
        .into_iter()
        .chain(extra.iter().copied())
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The first key of a stage.
pub fn base_key(base_id: Option<&str>) -> String {
    key("", &format!("FROM {}", base_id.unwrap_or("scratch")), &[])
}

/// The cache directory of a store.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// `<root>/build-cache`.
    pub fn open(root: &Path) -> Cache {
        Cache {
            dir: root.join("build-cache"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys are hex made by `key`: a plain file name.
        self.dir.join(format!("{key}.json"))
    }

    /// The state stored under `key`, if any and readable. Whether its
    /// blobs still exist is the caller's check (under its lease).
    pub fn get(&self, key: &str) -> Option<State> {
        let f = fs::File::open(self.path(key)).ok()?;
        let mut data = Vec::new();
        f.take(MAX_ENTRY).read_to_end(&mut data).ok()?;
        let state: State = serde_json::from_slice(&data).ok()?;
        state.config.is_object().then_some(state)
    }

    /// Store `state` under `key` (atomically: a reader sees the old entry
    /// or the new one).
    pub fn put(&self, key: &str, state: &State) -> Result<(), BuildError> {
        fs::create_dir_all(&self.dir).map_err(BuildError::io("create", &self.dir))?;
        let path = self.path(key);
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let data = serde_json::to_vec(state).expect("JSON serializes");
        fs::write(&tmp, data).map_err(BuildError::io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            BuildError::io("rename into", &path)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_every_input() {
        let base = base_key(Some("sha256:aa"));
        let k = key(&base, "RUN echo hi", &["A=1"]);
        assert_eq!(k, key(&base, "RUN echo hi", &["A=1"]), "deterministic");
        assert_eq!(k.len(), 64);
        for other in [
            key(&base_key(Some("sha256:bb")), "RUN echo hi", &["A=1"]),
            key(&base_key(None), "RUN echo hi", &["A=1"]),
            key(&base, "RUN echo ho", &["A=1"]),
            key(&base, "RUN echo hi", &["A=2"]),
            key(&base, "RUN echo hi", &[]),
            key(&base, "RUN echo hi", &["A=1", ""]),
            // Length prefixes: moving text between parts changes the key.
            key(&base, "RUN echo hiA=1", &[""]),
        ] {
            assert_ne!(k, other);
        }
        // A changed step changes every key after it.
        let next = key(&k, "CMD x", &[]);
        let next_other = key(&key(&base, "RUN echo ho", &["A=1"]), "CMD x", &[]);
        assert_ne!(next, next_other);
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path());
        let k = key("", "x", &[]);
        assert!(cache.get(&k).is_none());
        let mut s = State::scratch();
        s.history("ENV A=1", true);
        cache.put(&k, &s).unwrap();
        assert_eq!(cache.get(&k).unwrap(), s);
        fs::write(cache.path(&k), b"{not json").unwrap();
        assert!(cache.get(&k).is_none());
        fs::write(cache.path(&k), br#"{"config": 3, "layers": []}"#).unwrap();
        assert!(cache.get(&k).is_none());
    }
}
