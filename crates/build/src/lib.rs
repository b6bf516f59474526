//! vessel's image builder: `vessel build` for Containerfiles (Dockerfiles).
//!
//! See docs/build.md for the design and the decisions.

pub mod builder;
pub mod cache;
pub mod config_ops;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod error;
pub mod parse;
pub mod pattern;
pub mod run;
pub mod stages;
pub mod state;
pub mod subst;
pub mod workspace;

pub use builder::{build, BuildOptions, Built, Output};
pub use error::BuildError;
