//! The runtime's on-disk state: one directory per container under `--root`.
//!
//! `state.json` is written to a temporary file and renamed, so a crash at any
//! point leaves either the old or the new state, never half of one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};

/// Default `--root` of `vessel-runtime`.
pub const DEFAULT_ROOT: &str = "/run/vessel-runtime";
/// The FIFO the container's init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// Container id.
    pub id: String,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of the init process (field 22 of /proc/PID/stat), to tell a
    /// reused pid from ours.
    pub pid_start_time: u64,
    /// RFC 3339 creation time.
    pub created: String,
    /// The cgroup path as parsed from config.json (see `vessel_cgroups::CgroupPath`).
    pub cgroup_path: String,
    /// Whether `--systemd-cgroup` was given at creation.
    pub systemd_cgroup: bool,
    /// Annotations from config.json.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Set once the container process has been started.
    #[serde(default)]
    pub started: bool,
    /// The owner of the container (uid of whoever created it), for `list`.
    #[serde(default)]
    pub owner: String,
}

/// The directory that holds every container's state.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    /// Open (creating if needed) the state root.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root)
            .map_err(|e| RuntimeError::io("cannot create state root", root, e))?;
        Ok(StateStore {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state directory of container `id` (which may not exist).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Reserve `id`: create its directory, failing if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists(id.to_owned()))
            }
            Err(e) => Err(RuntimeError::io("cannot create state directory", dir, e)),
        }
    }

    /// Load the state of container `id`.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_owned()))
            }
            Err(e) => return Err(RuntimeError::io("cannot read", path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| RuntimeError::CorruptState { path, source: e })
    }

    /// Save the state of a container atomically.
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.dir(&state.id);
        let json = serde_json::to_vec_pretty(state).expect("state serializes");
        write_atomic(&dir.join(STATE_FILE), &json)
    }

    /// Remove the state directory of `id`.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("cannot remove state directory", dir, e)),
        }
    }

    /// Ids of all containers with a state file, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(|e| RuntimeError::io("cannot list", &self.root, e))?;
        for entry in entries.flatten() {
            if entry.path().join(STATE_FILE).exists() {
                if let Some(name) = entry.file_name().to_str() {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Write `data` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| RuntimeError::io("cannot create", &tmp, e))?;
    f.write_all(data)
        .map_err(|e| RuntimeError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| RuntimeError::io("cannot rename into place", path, e))
}

/// Container ids become directory names: allow what runc allows.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(RuntimeError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("it is a relative path component");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The current time as RFC 3339 with nanoseconds, in UTC.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Format a UNIX time as RFC 3339 (UTC).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn reserve_twice_fails_and_load_missing_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        store.reserve("c1").unwrap();
        assert!(matches!(
            store.reserve("c1"),
            Err(RuntimeError::AlreadyExists(_))
        ));
        assert!(matches!(store.load("c2"), Err(RuntimeError::NotFound(_))));
    }

    #[test]
    fn corrupt_state_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        let dir = store.reserve("c1").unwrap();
        fs::write(dir.join(STATE_FILE), b"{not json").unwrap();
        assert!(matches!(
            store.load("c1"),
            Err(RuntimeError::CorruptState { .. })
        ));
    }
}
