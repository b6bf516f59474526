//! `login`: check the credentials against the registry (GET /v2/ and its
//! challenge: Basic, or a token fetched with them), then store them.
//! `logout`: remove them.

use crate::auth_file::{AuthFile, Credentials};
use crate::client::{Body, Client, Request};
use crate::error::RegistryError;
use crate::options::Options;
use crate::status::status_error;

/// Verify `username`/`password` at `registry` and store them in the auth
/// file. Nothing is stored when the registry refuses them.
pub fn login(
    registry: &str,
    username: &str,
    password: &str,
    options: &Options,
) -> Result<(), RegistryError> {
    let creds = Credentials {
        username: username.to_string(),
        password: password.to_string(),
    };
    let client = Client::with_credentials(registry, options, Some(creds.clone()))?;
    let place = client.place("(all)", "login");
    let refused = |source: RegistryError| RegistryError::LoginRefused {
        registry: registry.to_string(),
        source: Box::new(source),
    };
    let answer = client
        .send_raw(&Request {
            method: "GET",
            url: client.url("v2/")?,
            scopes: &[],
            headers: vec![],
            body: Body::Empty,
            place: place.clone(),
        })
        .map_err(|e| match e.http_status() {
            Some(401 | 403) => refused(e),
            _ => e,
        })?;
    match answer {
        Ok(_) => {}
        Err((status @ (401 | 403), resp)) => {
            return Err(refused(status_error(&place, status, resp)))
        }
        Err((status, resp)) => return Err(status_error(&place, status, resp)),
    }
    AuthFile::locate(options.auth_file.as_deref())
        .store(registry, &creds)
        .map_err(RegistryError::AuthFile)
}

/// Remove the stored credentials of `registry`; whether there were any.
pub fn logout(registry: &str, options: &Options) -> Result<bool, RegistryError> {
    AuthFile::locate(options.auth_file.as_deref())
        .remove(registry)
        .map_err(RegistryError::AuthFile)
}
