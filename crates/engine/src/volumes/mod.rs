//! Named volumes: directories under the store that outlive containers.
//!
//! ```text
//! <root>/volumes/.volumes.lock         flock: create / remove / in-use checks
//! <root>/volumes/<name>/volume.json    the VolumeRecord
//! <root>/volumes/<name>/_data/         the data, bind-mounted into containers
//! <root>/volumes/<name>/copy.lock      flock: the first container's copy-up
//! ```
//!
//! A volume appears by the rename of a finished temporary directory (record
//! and `_data` written), and disappears by a rename to a hidden name before
//! its recursive removal, so a crash at any point leaves either a whole
//! volume or a hidden leftover that the next locked operation deletes.
//! Whether a volume is in use is read from the container records; creating
//! a container that uses volumes and removing a volume both hold
//! `.volumes.lock`, so a volume is never removed under a container being made.

mod copy_up;
mod engine_ops;
mod store;

pub use copy_up::copy_up;
pub use engine_ops::{Pruned, VolumeUse};
pub use store::{VolumeLock, VolumeStore};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the store remembers about a volume (docker's `volume inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// The name (docker's rule; 64 hex digits for an anonymous volume).
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Always `local`: the only driver.
    pub driver: String,
    /// `--label` / `volume-label=` key/values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME, `--mount
    /// type=volume` without a source): `rm -v` and `volume prune` remove it.
    #[serde(default)]
    pub anonymous: bool,
}

/// Failures of the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A name docker would refuse.
    #[error("Invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed")]
    InvalidName(String),
    /// No volume has this name.
    #[error("No such volume: {0}")]
    NotFound(String),
    /// Containers use the volume.
    #[error("Volume {name} is in use by container(s) {}", containers.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// Names of the containers that use it.
        containers: Vec<String>,
    },
    /// A volume option or driver vessel does not have.
    #[error("Volume {name}: {reason}")]
    Unsupported {
        /// The volume.
        name: String,
        /// Why.
        reason: String,
    },
    /// A record does not parse.
    #[error("Corrupt volume record {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// Copying the image's content into a new volume failed.
    #[error("Volume {name}: cannot copy the image's content at {path}")]
    CopyUp {
        /// The volume.
        name: String,
        /// The path in the container.
        path: String,
        /// The reason.
        #[source]
        source: Box<crate::copy::CopyError>,
    },
}

/// Check a user-given volume name (docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || name.len() < 2 || name.len() > 255 {
        return Err(VolumeError::InvalidName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
