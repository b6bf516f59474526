//! Options shared by pull, push and login.

use std::path::PathBuf;
use std::sync::Arc;

use vessel_image::manifest::Platform;

use crate::auth_file::Credentials;
use crate::progress::{Progress, Silent};
use crate::retry::RetryPolicy;

/// How to reach registries and what to report.
#[derive(Clone)]
pub struct Options {
    /// The platform an index resolves to (pull; push of a partial index).
    pub platform: Platform,
    /// `Some(false)`: plain HTTP for this registry (`--tls-verify=false`).
    /// `None`: HTTPS unless the registry is loopback or marked insecure in
    /// the registries config.
    pub tls_verify: Option<bool>,
    /// auth.json to read and write instead of podman's default location.
    pub auth_file: Option<PathBuf>,
    /// registries.conf to read instead of `/etc/containers/registries.conf`.
    pub registries_conf: Option<PathBuf>,
    /// Credentials to use instead of the auth file's.
    pub credentials: Option<Credentials>,
    /// Blobs transferred at the same time.
    pub jobs: usize,
    /// Blobs larger than this are pushed in chunks (PATCH) of this size.
    pub chunk_size: u64,
    /// Where per-blob progress goes.
    pub progress: Arc<dyn Progress>,
    /// How failed requests are retried (429, 5xx, dropped connections).
    pub retry: RetryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            platform: Platform::linux_amd64(),
            tls_verify: None,
            auth_file: None,
            registries_conf: None,
            credentials: None,
            jobs: 3,
            chunk_size: 16 << 20,
            progress: Arc::new(Silent),
            retry: RetryPolicy::default(),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("platform", &self.platform)
            .field("tls_verify", &self.tls_verify)
            .field("auth_file", &self.auth_file)
            .field("registries_conf", &self.registries_conf)
            .field("credentials", &self.credentials)
            .field("jobs", &self.jobs)
            .field("chunk_size", &self.chunk_size)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}
