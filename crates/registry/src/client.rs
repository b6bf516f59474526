//! One registry's HTTP client: base URL (HTTPS, or plain HTTP for loopback
//! and insecure registries), credentials, and the challenge-response dance
//! (a 401 with `WWW-Authenticate` → Basic, or a Bearer token for the
//! request's scopes → the request again, once).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use url::Url;

use crate::auth_file::{AuthFile, Credentials};
use crate::challenge::{self, Scheme};
use crate::config::RegistriesConf;
use crate::error::RegistryError;
use crate::options::Options;
use crate::retry::{self, RetryPolicy};
use crate::status::{status_error, Place};
use crate::token::{self, Token, TokenRequest};

/// A request body. Files are reopened for a retry after a challenge.
pub(crate) enum Body<'a> {
    /// No body (`Content-Length: 0` for POST/PUT/PATCH).
    Empty,
    /// Bytes in memory (manifests).
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`, counted through `counter`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        counter: &'a (dyn Fn(u64) + Sync),
    },
}

/// One request.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub url: Url,
    /// Token scopes (`repository:NAME:pull,push`).
    pub scopes: &'a [String],
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub place: Place,
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for Basic: send it on every request.
    basic: bool,
    tokens: HashMap<String, Token>,
}

/// A client for one registry.
pub(crate) struct Client {
    registry: String,
    base: Url,
    insecure: bool,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    retry: RetryPolicy,
}

/// The host that serves `registry`'s API (Docker Hub's is not docker.io).
pub(crate) fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Whether `registry` is this machine (plain HTTP is allowed there).
pub(crate) fn is_loopback(registry: &str) -> bool {
    if let Ok(ip) = registry.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Client {
    /// A client for `registry` with credentials from `options` or the auth
    /// file, and the scheme from `options`, loopback or the registries config.
    pub fn new(registry: &str, options: &Options) -> Result<Self, RegistryError> {
        let credentials = match &options.credentials {
            Some(c) => Some(c.clone()),
            None => AuthFile::locate(options.auth_file.as_deref())
                .get(registry)
                .map_err(RegistryError::AuthFile)?,
        };
        Self::with_credentials(registry, options, credentials)
    }

    /// A client with exactly these credentials (login).
    pub fn with_credentials(
        registry: &str,
        options: &Options,
        credentials: Option<Credentials>,
    ) -> Result<Self, RegistryError> {
        let insecure = match options.tls_verify {
            Some(false) => true,
            Some(true) => false,
            None => {
                is_loopback(registry)
                    || RegistriesConf::load(options.registries_conf.as_deref())
                        .map_err(RegistryError::Config)?
                        .is_insecure(registry)
            }
        };
        let scheme = if insecure { "http" } else { "https" };
        let text = format!("{scheme}://{}/", api_host(registry));
        let base = Url::parse(&text).map_err(|source| RegistryError::Url {
            registry: registry.to_string(),
            url: text,
            source,
        })?;
        // Redirects are followed for GET/HEAD (blobs live in object
        // storage); ureq drops the Authorization header when it follows one,
        // so registry credentials never reach the storage host.
        let agent = ureq::AgentBuilder::new()
            .redirects(5)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .user_agent(concat!("vessel/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            registry: registry.to_string(),
            base,
            insecure,
            agent,
            credentials,
            auth: Mutex::new(AuthState::default()),
            retry: options.retry,
        })
    }

    /// The registry as references name it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `scheme://host/` + `path` (which must not start with `/`).
    pub fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.join(&self.base, path)
    }

    /// A URL relative to another (upload `Location` headers may be relative).
    pub fn join(&self, base: &Url, rel: &str) -> Result<Url, RegistryError> {
        base.join(rel).map_err(|source| RegistryError::Url {
            registry: self.registry.clone(),
            url: rel.to_string(),
            source,
        })
    }

    /// A place for error messages.
    pub fn place(&self, repository: &str, what: impl Into<String>) -> Place {
        Place {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            what: what.into(),
        }
    }

    /// Send; any status of 400 or more is an error naming the place.
    pub fn send(&self, req: &Request<'_>) -> Result<ureq::Response, RegistryError> {
        match self.send_raw(req)? {
            Ok(resp) => Ok(resp),
            Err((status, resp)) => Err(status_error(&req.place, status, resp)),
        }
    }

    /// How this client retries.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Send, answering one authentication challenge; statuses of 400 or
    /// more come back as `Err((status, response))` for the caller to judge.
    /// An idempotent request that meets a passing failure (429, 5xx, a
    /// dropped connection) is sent again, as the retry policy says.
    #[allow(clippy::type_complexity)]
    pub fn send_raw(
        &self,
        req: &Request<'_>,
    ) -> Result<Result<ureq::Response, (u16, ureq::Response)>, RegistryError> {
        let retries = if retry::idempotent(req.method) {
            self.retry.retries
        } else {
            0
        };
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(req);
            if attempt >= retries {
                return outcome;
            }
            let wait = match &outcome {
                Ok(Err((status, resp))) if retry::retryable_status(*status) => {
                    self.retry.delay(attempt, resp.header("retry-after"))
                }
                Err(RegistryError::Transport { source, .. })
                    if retry::retryable_transport(source) =>
                {
                    self.retry.delay(attempt, None)
                }
                _ => return outcome,
            };
            drop(outcome);
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    #[allow(clippy::type_complexity)]
    fn send_once(
        &self,
        req: &Request<'_>,
    ) -> Result<Result<ureq::Response, (u16, ureq::Response)>, RegistryError> {
        let mut challenged = false;
        loop {
            let mut r = self.agent.request_url(req.method, &req.url);
            for (k, v) in &req.headers {
                r = r.set(k, v);
            }
            // Credentials only go to the registry's own origin: an upload
            // Location on another host gets none.
            let mut sent_basic = false;
            if req.url.origin() == self.base.origin() {
                if let Some(a) = self.authorization(req.scopes) {
                    sent_basic = a.starts_with("Basic ");
                    r = r.set("Authorization", &a);
                }
            }
            let result = match &req.body {
                Body::Empty if matches!(req.method, "GET" | "HEAD" | "DELETE") => r.call(),
                Body::Empty => r.send_bytes(&[]),
                Body::Bytes(b) => r.send_bytes(b),
                Body::File {
                    path,
                    offset,
                    len,
                    counter,
                } => {
                    let reader = self.open_part(path, *offset, *len, &req.place)?;
                    r.set("Content-Length", &len.to_string()).send(Counting {
                        inner: reader,
                        done: 0,
                        counter: *counter,
                    })
                }
            };
            match result {
                Ok(resp) => return Ok(Ok(resp)),
                Err(ureq::Error::Status(401, resp)) if !challenged => {
                    challenged = true;
                    if !self.answer_challenge(&resp, req.scopes, sent_basic)? {
                        return Ok(Err((401, resp)));
                    }
                }
                Err(ureq::Error::Status(status, resp)) => return Ok(Err((status, resp))),
                Err(ureq::Error::Transport(t)) => {
                    return Err(RegistryError::Transport {
                        registry: self.registry.clone(),
                        what: format!("{} of {}", req.place.what, req.place.repository),
                        source: Box::new(t),
                    })
                }
            }
        }
    }

    fn open_part(
        &self,
        path: &Path,
        offset: u64,
        len: u64,
        place: &Place,
    ) -> Result<std::io::Take<File>, RegistryError> {
        let io = |source| RegistryError::Transfer {
            registry: self.registry.clone(),
            what: place.what.clone(),
            source,
        };
        let mut f = File::open(path).map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(f.take(len))
    }

    fn authorization(&self, scopes: &[String]) -> Option<String> {
        let state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if state.basic {
            return self.credentials.as_ref().map(Credentials::basic_header);
        }
        state
            .tokens
            .get(&scopes.join(" "))
            .filter(|t| t.fresh())
            .map(|t| format!("Bearer {}", t.value))
    }

    /// Act on a 401's challenges. `false` when there is nothing new to try
    /// (Basic without credentials, or Basic already sent with this request;
    /// another thread may have switched to Basic meanwhile, which is news).
    fn answer_challenge(
        &self,
        resp: &ureq::Response,
        scopes: &[String],
        sent_basic: bool,
    ) -> Result<bool, RegistryError> {
        let mut challenges = Vec::new();
        for h in resp.all("www-authenticate") {
            challenges.extend(
                challenge::parse(h).map_err(|source| RegistryError::Challenge {
                    registry: self.registry.clone(),
                    source,
                })?,
            );
        }
        let bearer = challenges.iter().find(|c| c.scheme == Scheme::Bearer);
        let basic = challenges.iter().any(|c| c.scheme == Scheme::Basic);
        let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = bearer {
            let realm = b.param("realm").ok_or_else(|| RegistryError::Realm {
                registry: self.registry.clone(),
                realm: String::new(),
            })?;
            // GET /v2/ (login) has no scope of its own: use the challenge's.
            let from_challenge: Vec<String> =
                b.param("scope").map(String::from).into_iter().collect();
            let asked = if scopes.is_empty() {
                &from_challenge[..]
            } else {
                scopes
            };
            let token = token::fetch(
                &self.agent,
                &TokenRequest {
                    registry: &self.registry,
                    insecure: self.insecure,
                    realm,
                    service: b.param("service"),
                    scopes: asked,
                    credentials: self.credentials.as_ref(),
                },
            )?;
            state.tokens.insert(scopes.join(" "), token);
            return Ok(true);
        }
        if basic {
            if sent_basic || self.credentials.is_none() {
                return Ok(false);
            }
            state.basic = true;
            return Ok(true);
        }
        Err(RegistryError::NoChallenge {
            registry: self.registry.clone(),
        })
    }
}

/// A reader that reports its running byte count (upload progress).
struct Counting<'a, R> {
    inner: R,
    done: u64,
    counter: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.counter)(self.done);
        Ok(n)
    }
}

/// Read a whole response of at most `limit` bytes.
pub(crate) fn read_capped(
    resp: ureq::Response,
    limit: u64,
    place: &Place,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        registry: place.registry.clone(),
        what: format!("{} of {}", place.what, place.repository),
        limit,
    };
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    let mut data = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|source| RegistryError::Transfer {
            registry: place.registry.clone(),
            what: format!("{} of {}", place.what, place.repository),
            source,
        })?;
    if data.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(data)
}

/// The scope to read a repository.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope to write a repository.
pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_docker_hub() {
        for local in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "quay.io",
            "10.0.0.1:5000",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("quay.io"), "quay.io");
    }
}
