//! Bearer tokens: fetched from the challenge's `realm` with its `service`
//! and the scopes a request needs, cached per scope set until they expire.

use std::io::Read;
use std::time::{Duration, Instant};

use url::Url;

use crate::auth_file::Credentials;
use crate::error::RegistryError;
use crate::status::ErrorBody;

/// Most of a token response read.
const MAX_TOKEN_BODY: u64 = 1 << 20;
/// Tokens without `expires_in` live this long (the spec's default).
const DEFAULT_LIFETIME: u64 = 60;

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

impl Token {
    pub fn fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// What a token request needs.
pub(crate) struct TokenRequest<'a> {
    pub registry: &'a str,
    /// Plain-HTTP registries may have a plain-HTTP realm; HTTPS ones may not.
    pub insecure: bool,
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scopes: &'a [String],
    pub credentials: Option<&'a Credentials>,
}

/// GET the realm (Basic auth with the user's credentials when there are
/// any, anonymous otherwise) and read `token` or `access_token`.
pub(crate) fn fetch(agent: &ureq::Agent, req: &TokenRequest<'_>) -> Result<Token, RegistryError> {
    let bad_realm = || RegistryError::Realm {
        registry: req.registry.to_string(),
        realm: req.realm.to_string(),
    };
    let mut url = Url::parse(req.realm).map_err(|_| bad_realm())?;
    match url.scheme() {
        "https" => {}
        "http" if req.insecure => {}
        _ => return Err(bad_realm()),
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = req.service {
            q.append_pair("service", s);
        }
        for s in req.scopes {
            q.append_pair("scope", s);
        }
        if let Some(c) = req.credentials {
            q.append_pair("account", &c.username);
        }
    }
    let mut r = agent.request_url("GET", &url);
    if let Some(c) = req.credentials {
        r = r.set("Authorization", &c.basic_header());
    }
    let resp = match r.call() {
        Ok(resp) => resp,
        Err(ureq::Error::Status(status, resp)) => {
            let mut data = Vec::new();
            let _ = resp.into_reader().take(64 << 10).read_to_end(&mut data);
            return Err(RegistryError::TokenStatus {
                registry: req.registry.to_string(),
                realm: req.realm.to_string(),
                status,
                detail: ErrorBody::parse(&data),
            });
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(RegistryError::Transport {
                registry: req.registry.to_string(),
                what: format!("token from {}", req.realm),
                source: Box::new(t),
            })
        }
    };
    let mut data = Vec::new();
    resp.into_reader()
        .take(MAX_TOKEN_BODY + 1)
        .read_to_end(&mut data)
        .map_err(|source| RegistryError::Transfer {
            registry: req.registry.to_string(),
            what: format!("token from {}", req.realm),
            source,
        })?;
    if data.len() as u64 > MAX_TOKEN_BODY {
        return Err(RegistryError::TooLarge {
            registry: req.registry.to_string(),
            what: format!("token from {}", req.realm),
            limit: MAX_TOKEN_BODY,
        });
    }
    parse(&data, req.registry, req.realm)
}

/// Parse a token response: `{"token": ..}` or `{"access_token": ..}`,
/// optional `expires_in` seconds.
pub(crate) fn parse(data: &[u8], registry: &str, realm: &str) -> Result<Token, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let body_err = |source| RegistryError::TokenBody {
        registry: registry.to_string(),
        realm: realm.to_string(),
        source,
    };
    let body: Body = serde_json::from_slice(data).map_err(body_err)?;
    let value = body
        .token
        .filter(|t| !t.is_empty())
        .or(body.access_token)
        .unwrap_or_default();
    // The token goes into a header: refuse anything that could break it.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(body_err(serde::de::Error::custom(
            "the token is empty or not printable ASCII",
        )));
    }
    let life = body
        .expires_in
        .unwrap_or(DEFAULT_LIFETIME)
        .clamp(DEFAULT_LIFETIME, 24 * 3600);
    // Renew a little early so a token never expires mid-request.
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(life - 10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies() {
        let t = parse(br#"{"token":"abc.def","expires_in":300}"#, "r", "u").unwrap();
        assert_eq!(t.value, "abc.def");
        assert!(t.fresh());
        let t = parse(br#"{"access_token":"xyz"}"#, "r", "u").unwrap();
        assert_eq!(t.value, "xyz");
        for bad in [
            &br#"{}"#[..],
            br#"{"token":""}"#,
            br#"{"token":"a\r\nX-Evil: 1"}"#,
            br#"{"token":"a b"}"#,
            br#"{"token":5}"#,
            b"not json",
        ] {
            assert!(
                parse(bad, "r", "u").is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
