//! vessel's image builder: `vessel build` for Containerfiles (Dockerfiles).
//!
//! See docs/build.md for the design and the decisions.

pub mod cache;
pub mod context;
pub mod dockerignore;
pub mod error;
pub mod parse;
pub mod pattern;
pub mod state;
pub mod subst;
