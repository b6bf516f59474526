//! The engine's errors: each names the container, image or file concerned;
//! the cause is kept as `#[source]`, so a caller can print the whole chain.

use std::io;
use std::path::PathBuf;

/// Failures of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or directory of the container store could not be used.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// A metadata file does not parse.
    #[error("Corrupt container metadata {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// A container name that docker would refuse.
    #[error("Invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed")]
    InvalidName(String),
    /// The name belongs to another container.
    #[error("The container name {name:?} is already in use by container {id}")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// No container has this id, id prefix or name.
    #[error("No such container: {0}")]
    NotFound(String),
    /// An id prefix matches several containers.
    #[error("Multiple containers match {0:?}: use more of the id or the name")]
    Ambiguous(String),
    /// The operation does not fit the container's state.
    #[error("Container {id} is {status}: cannot {operation}")]
    WrongState {
        /// The container.
        id: String,
        /// Its current status.
        status: String,
        /// What was asked.
        operation: &'static str,
    },
    /// An option of the request is not valid.
    #[error("Invalid option {option}: {reason}")]
    InvalidOption {
        /// The option (`--cap-add`, `--cpus`, ...).
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Neither the request nor the image says what to run.
    #[error("No command specified: the image has neither Entrypoint nor Cmd, and none was given")]
    NoCommand,
    /// `-u`/`User` names a user or group that the image does not have.
    #[error("Unable to find {what} {name:?} in the image's {file}")]
    UnknownUser {
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// The image reference does not parse.
    #[error("Invalid image reference {reference:?}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// The parser's reason.
        #[source]
        source: vessel_image::reference::ReferenceError,
    },
    /// The image store failed (image not found, corrupt blob, unpack failure...).
    #[error("Image {image}")]
    Image {
        /// The image reference.
        image: String,
        /// The store's reason.
        #[source]
        source: Box<vessel_image::StoreError>,
    },
    /// The snapshotter failed for the container's writable layer.
    #[error("Container {id}: writable layer")]
    Snapshot {
        /// The container.
        id: String,
        /// The snapshotter's reason.
        #[source]
        source: vessel_image::snapshot::SnapshotError,
    },
    /// The container's writable layer could not be compared with its image.
    #[error("Container {id}: changes of the writable layer")]
    Diff {
        /// The container.
        id: String,
        /// The reason.
        #[source]
        source: vessel_image::diff::DiffError,
    },
    /// Mounting or unmounting the container's rootfs failed.
    #[error("Container {id}: rootfs")]
    Mount {
        /// The container.
        id: String,
        /// The reason.
        #[source]
        source: vessel_image::mount::MountError,
    },
    /// The built-in seccomp profile could not be used (a bug in the data file).
    #[error("Default seccomp profile")]
    Seccomp(#[source] serde_json::Error),
    /// The generated runtime spec does not parse (a bug in spec generation).
    #[error("Generated config.json for container {id} is invalid")]
    Spec {
        /// The container.
        id: String,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// The OCI runtime failed.
    #[error("Container {id}: runtime")]
    Runtime {
        /// The container.
        id: String,
        /// The runtime's reason.
        #[source]
        source: Box<vessel_runtime::RuntimeError>,
    },
    /// The container's process could not be started (the runtime's error,
    /// reported by the monitor process, one cause per entry).
    #[error("Container {id} could not start: {}", chain.join(": "))]
    StartFailed {
        /// The container.
        id: String,
        /// The error chain, outermost first.
        chain: Vec<String>,
    },
    /// A volume operation failed (not found, in use, bad name, copy-up).
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// `vessel cp` failed.
    #[error("Copy")]
    Copy(#[from] crate::copy::CopyError),
    /// Networking failed (a network, an endpoint, a published port).
    #[error("{what}")]
    Network {
        /// What was being done (`Container ID: network`, `Network NAME`).
        what: String,
        /// The reason.
        #[source]
        source: vessel_net::NetError,
    },
    /// A system call of the engine itself failed.
    #[error("{call} failed")]
    Sys {
        /// The call.
        call: &'static str,
        /// The reason.
        #[source]
        source: nix::Error,
    },
}

impl EngineError {
    /// `Io` for `op` on `path`, as a closure for `map_err`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| EngineError::Io { op, path, source }
    }

    /// The error and its causes, outermost first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.to_string()];
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push(e.to_string());
            cur = e.source();
        }
        out
    }

    /// The exit code docker gives this error: 127 when the command is not
    /// found in the image, 126 when it is there but cannot be run (not
    /// executable, a directory), else 125 (the engine failed). The runtime
    /// checks `process.args[0]` before the container starts and reports it
    /// by that field name with execve's words (also across the init's error
    /// channel, as text).
    pub fn exit_code(&self) -> i32 {
        let chain = self.chain();
        match chain.iter().find(|c| c.contains("process.args[0]")) {
            Some(c) if c.contains("permission denied") || c.contains("is a directory") => 126,
            Some(_) => 127,
            None => 125,
        }
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, EngineError>;
