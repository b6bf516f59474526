//! vessel's registry client: the OCI distribution API on top of the image
//! store. `pull` streams a manifest's blobs into the content store (each
//! verified before it becomes visible) and tags it; `push` uploads an image
//! from the store; `login`/`logout` keep credentials in podman's auth.json.
//!
//! See docs/registry.md for the design and the decisions.

#![forbid(unsafe_code)]

pub mod auth_file;
pub mod challenge;
mod client;
pub mod config;
mod error;
pub mod fetch;
mod login;
mod options;
mod parallel;
pub mod progress;
mod pull;
mod push;
pub mod render;
pub mod retry;
mod sources;
mod status;
mod token;

pub use auth_file::{AuthFile, AuthFileError, Credentials};
pub use challenge::{Challenge, ChallengeError, Scheme};
pub use config::{ConfigError, RegistriesConf};
pub use error::RegistryError;
pub use login::{login, logout};
pub use options::Options;
pub use progress::{Direction, Outcome, Progress, Silent};
pub use pull::pull;
pub use push::push;
pub use retry::RetryPolicy;
pub use status::ErrorBody;
/// The image store this crate works on (so a user needs one dependency).
pub use vessel_image;
