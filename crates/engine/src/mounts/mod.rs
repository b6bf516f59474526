//! A container's bind mounts and volumes: the `-v`/`--mount` parsers
//! ([`parse`]), their resolution when a container is created ([`plan`]:
//! `--volumes-from`, the image's VOLUME list, anonymous volume names, bind
//! sources that must exist, volumes created under the store's lock), and
//! their place in the rootfs and the OCI spec ([`rootfs`]).

pub mod parse;
mod plan;
mod rootfs;

pub(crate) use plan::{plan, release_volumes, reserve_volumes};
pub use rootfs::source_path;
pub(crate) use rootfs::{add_to_spec, prepare};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path (`-v /host:/path`, `--mount type=bind`).
    Bind,
    /// A volume of the store (`-v name:/path`, `-v /path`, image VOLUME).
    Volume,
}

/// One bind mount or volume of a container (tmpfs mounts are
/// [`crate::record::TmpfsMount`]s, shared with `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// Bind or volume.
    pub kind: MountKind,
    /// The host path (bind) or the volume's name (volume; empty in a parsed
    /// request for an anonymous volume until [`plan`] names it).
    pub source: String,
    /// Where, inside the container (absolute, no `..`).
    pub destination: String,
    /// `ro`.
    #[serde(default)]
    pub read_only: bool,
    /// `bind-propagation` / a propagation mode of `-v` (binds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// A volume made for this container: `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
    /// `nocopy` / `volume-nocopy`: no copy-up of the image's content.
    #[serde(default)]
    pub no_copy: bool,
    /// `z` or `Z` (SELinux relabelling; no SELinux on vessel's hosts, kept
    /// for `inspect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relabel: Option<String>,
    /// `volume-label=` labels for a volume this mount creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl MountPoint {
    /// docker's `Mode` in `inspect` (`ro`, `z`, `ro,Z`, or empty).
    pub fn mode(&self) -> String {
        let mut m = Vec::new();
        if self.read_only {
            m.push("ro");
        }
        if let Some(r) = &self.relabel {
            m.push(r);
        }
        m.join(",")
    }

    /// The propagation docker reports and the runtime applies.
    pub fn propagation(&self) -> &str {
        match (self.kind, &self.propagation) {
            (_, Some(p)) => p,
            (MountKind::Bind, None) => "rprivate",
            (MountKind::Volume, None) => "",
        }
    }
}
