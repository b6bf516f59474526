//! Thin, safe wrappers over the system calls the runtime needs and nix lacks.

pub mod fds;
pub mod fork;
pub mod proc;
pub mod resolve;
pub mod sync;
