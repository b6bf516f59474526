//! vessel's engine: containers as users see them.
//!
//! A container is an image plus a writable layer, a name, a configuration and
//! a state, kept in `<root>/containers/<id>/` (see [`store`]). The engine
//! turns the image's config and the user's options into an OCI runtime spec
//! with docker's secure defaults ([`spec`]), mounts the container's overlay
//! rootfs ([`rootfs`]), and runs it through `vessel-runtime` as a library
//! ([`monitor`]). [`Engine`] ties these together; the `vessel` CLI is meant
//! to be a thin layer over it. See docs/engine.md.

#![deny(unsafe_code)]

pub mod copy;
pub mod engine;
pub mod error;
pub mod exec;
mod files;
pub mod flags;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod names;
pub mod network;
pub mod options;
pub mod record;
pub mod rootfs;
pub mod spec;
pub mod store;
pub mod tty;
pub mod volumes;

pub use engine::{Attach, Engine, EngineConfig, Outcome, Stdio};
pub use error::{EngineError, Result};
pub use options::CreateOptions;
pub use record::{ContainerConfig, ContainerRecord, ContainerState, Limits, NetworkMode, Status};
pub use store::ContainerStore;
