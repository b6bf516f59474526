//! vessel's image store: content-addressed blobs in an OCI image layout,
//! OCI and Docker v2 manifests, names and tags, safe layer application,
//! overlayfs snapshots, and loading/saving image archives.
//!
//! See docs/image-store.md for the layout on disk and the decisions.

pub mod content;
pub mod digest;
mod fsutil;

pub use content::{ContentError, ContentStore, Writer};
pub use digest::{Digest, DigestError};
pub mod apply;
pub mod archive;
pub mod catalog;
pub mod diff;
pub mod gc;
pub mod history;
pub mod import;
pub mod manifest;
pub mod mount;
pub mod prune;
pub mod reference;
pub mod remove;
pub mod snapshot;
pub mod store;
pub mod tags;
pub mod time;
pub mod unpack;
pub mod usage;

pub use reference::Reference;
pub use store::{Image, ImageStore, StoreError};
