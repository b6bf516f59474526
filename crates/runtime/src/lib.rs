//! vessel's OCI runtime library.
//!
//! It implements the container lifecycle of the OCI runtime specification
//! (`create`, `start`, `state`, `kill`, `delete`, plus `exec`, `pause`,
//! `resume`, `update`, `ps` and `events`) on top of Linux namespaces,
//! cgroups (v1 and v2, see `vessel-cgroups`), capabilities, rlimits and
//! seccomp (see `vessel-seccomp`).
//!
//! The process model is described in `docs/runtime.md`: the runtime process
//! forks the container's init, which sets the container up, reports back over
//! a socket and then blocks on a FIFO in the state directory until `start`
//! opens it.

pub mod bundle;
pub mod cgroup_warmup;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod sealed_exe;
pub mod spawn;
pub mod state;
pub mod sys;

pub use container::{Container, ContainerStatus, CreateOptions, DeleteOptions};
pub use error::RuntimeError;
pub use exec::ExecOptions;
pub use state::StateStore;
