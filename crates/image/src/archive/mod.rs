//! Image archives: `docker save` archives and OCI archives (a tar of an
//! OCI layout) in, OCI archives (with a docker-compatible `manifest.json`)
//! out.

mod load;
mod save;

pub use load::{load, LoadError, Loaded};
pub use save::{save, SaveError};

/// Annotation containerd and docker use for an image's full name.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
