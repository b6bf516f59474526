//! The one error type of this crate.
//!
//! Every variant names what it was working on (a file and the value written to it, a
//! controller, a cgroupsPath) so that a user reading the chain printed by the CLI knows what
//! failed; the operating-system cause is kept as the `#[source]` and never repeated in the
//! message.

use std::io;
use std::path::PathBuf;

/// Result type of this crate.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

/// What went wrong while managing a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup mount point could not be inspected.
    #[error("Cannot inspect the cgroup mount at {path}")]
    Statfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The OCI `linux.cgroupsPath` (or the container id used to build the default) is malformed.
    #[error("Invalid cgroupsPath {value:?}: {reason}")]
    InvalidPath { value: String, reason: String },

    /// A cgroup interface file could not be read.
    #[error("Cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A cgroup interface file refused a value (EINVAL, EBUSY, EPERM, ... in the source).
    #[error("Cannot write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// A cgroup interface file held something this crate does not understand.
    #[error("Unexpected content {content:?} in {path}")]
    Parse { path: PathBuf, content: String },

    /// A cgroup directory could not be created.
    #[error("Cannot create the cgroup directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be listed.
    #[error("Cannot list the cgroup directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be removed (still busy after retries, or another cause).
    #[error("Cannot remove the cgroup directory {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A resource was requested whose controller is not mounted (v1) or not enabled (v2).
    #[error("The {controller} cgroup controller is not available, but {resource} needs it")]
    ControllerUnavailable {
        controller: String,
        resource: String,
    },

    /// A resource this crate cannot honour on the host's cgroup version.
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: String, reason: String },

    /// A resource value that is invalid in itself (rejected before anything is written).
    #[error("Invalid {resource}: {reason}")]
    InvalidResource { resource: String, reason: String },

    /// A bpf(2) step of the cgroup v2 device filter failed (the verifier's log, when the
    /// kernel refused the program, is in the message).
    #[error("Cannot {operation} the device filter for {path}{detail}")]
    DeviceFilter {
        operation: String,
        path: PathBuf,
        detail: String,
        #[source]
        source: io::Error,
    },

    /// The freezer did not reach the requested state in time.
    #[error("Timed out waiting for {path} to report {expected}")]
    FreezeTimeout { path: PathBuf, expected: String },
}
