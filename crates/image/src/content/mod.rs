//! The content store: blobs addressed by their sha256 digest, laid out as an
//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`).
//!
//! A blob becomes visible only through [`Writer::commit`], which checks size
//! and digest first and then renames a finished temporary file into place, so
//! a reader never sees a partial or wrong blob and a failed or interrupted
//! write leaves nothing under `blobs/`.

mod store;
mod writer;

pub use store::{ContentError, ContentStore};
pub use writer::Writer;
