//! The errors of registry operations. Each names the registry, the
//! repository and what was asked for, with the cause as its source.

use std::io;

use vessel_image::content::ContentError;
use vessel_image::manifest::ManifestError;
use vessel_image::reference::ReferenceError;
use vessel_image::{Digest, StoreError};

use crate::auth_file::AuthFileError;
use crate::challenge::ChallengeError;
use crate::config::ConfigError;
use crate::status::ErrorBody;

/// Failures of pull, push, login and logout.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("Invalid image reference {input:?}")]
    Reference {
        /// What was given.
        input: String,
        /// Why.
        #[source]
        source: ReferenceError,
    },
    /// 401: no or wrong credentials.
    #[error("Registry {registry}: {what} of {repository}: authentication required or refused (HTTP 401)")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// 403: the credentials do not allow this.
    #[error("Registry {registry}: {what} of {repository}: access denied (HTTP 403)")]
    Denied {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// 404: no such repository, tag or blob.
    #[error("Registry {registry}: {what} of {repository}: not found (HTTP 404)")]
    NotFound {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// 429: rate limited.
    #[error("Registry {registry}: {what} of {repository}: too many requests, try again later (HTTP 429)")]
    TooManyRequests {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// 5xx: the registry failed.
    #[error("Registry {registry}: {what} of {repository}: server error (HTTP {status})")]
    Server {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The status.
        status: u16,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// Any other status the protocol does not expect here.
    #[error("Registry {registry}: {what} of {repository}: unexpected answer (HTTP {status})")]
    Status {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for.
        what: String,
        /// The status.
        status: u16,
        /// The registry's message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// Connection, TLS or protocol failure.
    #[error("Registry {registry}: {what}: cannot connect or talk to it")]
    Transport {
        /// The registry.
        registry: String,
        /// What was asked for.
        what: String,
        /// The client's reason.
        #[source]
        source: Box<ureq::Transport>,
    },
    /// Reading or sending a body failed midway.
    #[error("Registry {registry}: {what}: transfer failed")]
    Transfer {
        /// The registry.
        registry: String,
        /// What was transferred.
        what: String,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// A response larger than vessel accepts for its kind.
    #[error("Registry {registry}: {what} is larger than the {limit} bytes accepted")]
    TooLarge {
        /// The registry.
        registry: String,
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A manifest that does not hash to the digest asked for or announced.
    #[error("Manifest {reference}: digest mismatch: expected {expected}, got {actual}")]
    ManifestDigest {
        /// The manifest's name or digest.
        reference: String,
        /// The digest expected.
        expected: Digest,
        /// The digest of what came.
        actual: Digest,
    },
    /// A manifest whose size is not its descriptor's.
    #[error("Manifest {reference}: size mismatch: expected {expected} bytes, got {actual}")]
    ManifestSize {
        /// The manifest's name or digest.
        reference: String,
        /// Size in the descriptor.
        expected: u64,
        /// Size of what came.
        actual: u64,
    },
    /// A manifest, index or config that does not parse.
    #[error("{reference}: invalid manifest, index or config")]
    Manifest {
        /// Which one.
        reference: String,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// A media type vessel does not pull (schema 1, artifacts, ...).
    #[error("{reference}: unsupported manifest media type {media_type:?} (expected an OCI or Docker v2 manifest or index)")]
    MediaType {
        /// Which manifest.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// No manifest for the platform asked for.
    #[error("{reference}: no image for the requested platform")]
    Platform {
        /// The image.
        reference: String,
        /// The index and platform.
        #[source]
        source: ManifestError,
    },
    /// A blob that is not what its descriptor says (size or digest).
    #[error("Blob {digest} is not what its descriptor says")]
    Blob {
        /// The blob.
        digest: Digest,
        /// The mismatch.
        #[source]
        source: ContentError,
    },
    /// A blob longer than its descriptor (stopped before it is all read).
    #[error("Blob {digest} is longer than the {expected} bytes its descriptor says")]
    BlobTooLong {
        /// The blob.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
    },
    /// The config's layer list does not match the manifest's.
    #[error(
        "{reference}: the manifest has {layers} layers but the config lists {diff_ids} diff IDs"
    )]
    LayerCount {
        /// The image.
        reference: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// The image store failed.
    #[error("Image store")]
    Store(#[source] StoreError),
    /// The content store failed.
    #[error("Image store")]
    Content(#[source] ContentError),
    /// A `WWW-Authenticate` header vessel cannot read.
    #[error("Registry {registry}: unreadable authentication challenge")]
    Challenge {
        /// The registry.
        registry: String,
        /// The parser's reason.
        #[source]
        source: ChallengeError,
    },
    /// A 401 without a Basic or Bearer challenge.
    #[error("Registry {registry}: answered 401 without a Basic or Bearer challenge")]
    NoChallenge {
        /// The registry.
        registry: String,
    },
    /// A token realm vessel refuses to send credentials to.
    #[error("Registry {registry}: token realm {realm:?} is not an https URL (or http on an insecure registry)")]
    Realm {
        /// The registry.
        registry: String,
        /// The realm.
        realm: String,
    },
    /// The token endpoint refused or failed.
    #[error("Registry {registry}: token endpoint {realm} answered HTTP {status}")]
    TokenStatus {
        /// The registry.
        registry: String,
        /// The endpoint.
        realm: String,
        /// The status.
        status: u16,
        /// Its message.
        #[source]
        detail: Option<ErrorBody>,
    },
    /// The token endpoint's answer is not a token.
    #[error("Registry {registry}: token endpoint {realm} sent no usable token")]
    TokenBody {
        /// The registry.
        registry: String,
        /// The endpoint.
        realm: String,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// Credentials were refused at login.
    #[error("Login to {registry} failed: user name or password refused")]
    LoginRefused {
        /// The registry.
        registry: String,
        /// What the registry said.
        #[source]
        source: Box<RegistryError>,
    },
    /// The auth file failed.
    #[error("Credentials")]
    AuthFile(#[source] AuthFileError),
    /// The registries config failed.
    #[error("Registries config")]
    Config(#[source] ConfigError),
    /// A header the protocol needs is missing or malformed.
    #[error("Registry {registry}: {what}: bad or missing {header} header")]
    Header {
        /// The registry.
        registry: String,
        /// What was asked for.
        what: String,
        /// The header.
        header: &'static str,
    },
    /// A URL vessel cannot build or follow.
    #[error("Registry {registry}: bad URL {url:?}")]
    Url {
        /// The registry.
        registry: String,
        /// The URL text.
        url: String,
        /// The parser's reason.
        #[source]
        source: url::ParseError,
    },
    /// After a push the registry names another digest than vessel's.
    #[error("Registry {registry}: {repository} stored {what} as {actual}, expected {expected}")]
    PushDigest {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The manifest or blob.
        what: String,
        /// vessel's digest.
        expected: Digest,
        /// The registry's.
        actual: String,
    },
    /// A transfer stopped because another one of the same operation failed.
    #[error("Cancelled because another transfer failed")]
    Cancelled,
}

impl RegistryError {
    /// The HTTP status behind this error, if it is a refusal by status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::Denied { .. } => Some(403),
            RegistryError::NotFound { .. } => Some(404),
            RegistryError::TooManyRequests { .. } => Some(429),
            RegistryError::Server { status, .. }
            | RegistryError::Status { status, .. }
            | RegistryError::TokenStatus { status, .. } => Some(*status),
            RegistryError::LoginRefused { source, .. } => source.http_status(),
            _ => None,
        }
    }
}
