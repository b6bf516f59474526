//! Errors of the runtime library.

use std::path::PathBuf;

/// Anything that can go wrong while managing a container.
///
/// Each variant names the container, file or field concerned; the underlying
/// cause is kept as `#[source]` so that the CLI can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle's config.json could not be read.
    #[error("cannot read {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// config.json is not valid JSON for the runtime spec.
    #[error("invalid {path}: field `{field}`: {message}")]
    ParseConfig {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// config.json parses but says something the runtime cannot do.
    #[error("invalid config.json: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// The container id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// A container with this id already exists.
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    /// No container with this id exists.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The operation is not allowed in the container's current state.
    #[error("container {id:?} is {status}: cannot {operation}")]
    WrongState {
        id: String,
        status: String,
        operation: &'static str,
    },
    /// A file or directory operation failed.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{call} failed")]
    Sys {
        call: String,
        #[source]
        source: nix::Error,
    },
    /// The state file of a container is corrupt.
    #[error("corrupt state file {path}")]
    CorruptState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A cgroup operation failed.
    #[error("cgroup of container {id:?}")]
    Cgroup {
        id: String,
        #[source]
        source: vessel_cgroups::CgroupError,
    },
    /// The kernel (or the cgroup manager) refused `linux.resources`.
    #[error("linux.resources of container {id:?} cannot be applied")]
    Resources {
        id: String,
        #[source]
        source: vessel_cgroups::CgroupError,
    },
    /// The seccomp profile could not be compiled.
    #[error("linux.seccomp")]
    Seccomp(#[source] vessel_seccomp::SeccompError),
    /// A hook failed or timed out.
    #[error("{kind} hook {path} failed: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// The container's init process reported an error while setting up.
    #[error("container init failed")]
    Init(#[source] Box<RuntimeError>),
    /// One level of an error chain reported by another process.
    #[error("{message}")]
    Remote {
        message: String,
        #[source]
        source: Option<Box<RuntimeError>>,
    },
    /// The container's init process went away without saying why.
    #[error("container init exited before it was ready ({0})")]
    InitDied(String),
    /// The console socket could not be used.
    #[error("console socket {path}")]
    ConsoleSocket {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

impl RuntimeError {
    /// Shorthand for a failed syscall.
    pub fn sys(call: impl Into<String>, source: nix::Error) -> Self {
        RuntimeError::Sys {
            call: call.into(),
            source,
        }
    }

    /// Shorthand for a failed file operation.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The error and all its causes, outermost first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.to_string()];
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push(e.to_string());
            cur = e.source();
        }
        out
    }

    /// Rebuild a nested error from a chain reported by the init process
    /// (errors cannot cross a process boundary as values; their messages can,
    /// and keeping each level keeps the cause visible to the user).
    pub fn from_chain(chain: &[String]) -> Self {
        let mut err: Option<Box<RuntimeError>> = None;
        for msg in chain.iter().rev() {
            err = Some(Box::new(RuntimeError::Remote {
                message: msg.clone(),
                source: err,
            }));
        }
        match err {
            Some(e) => RuntimeError::Init(e),
            None => RuntimeError::InitDied("no message".into()),
        }
    }
}

/// Result alias of the runtime library.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
