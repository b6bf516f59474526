//! Image references: `[registry[:port]/]repo[:tag][@sha256:...]`, normalized
//! like docker's (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The default registry.
pub const DOCKER_IO: &str = "docker.io";

/// Why a string is not a valid image reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Empty input.
    #[error("Invalid image reference: empty")]
    Empty,
    /// The repository part breaks docker's grammar.
    #[error("Invalid image reference {reference:?}: repository {repo:?} must be lowercase letters, digits and separators (. _ __ -), components separated by /")]
    Repository {
        /// The whole input.
        reference: String,
        /// The bad repository.
        repo: String,
    },
    /// The tag breaks docker's grammar.
    #[error("Invalid image reference {reference:?}: tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    Tag {
        /// The whole input.
        reference: String,
        /// The bad tag.
        tag: String,
    },
    /// The registry host is malformed.
    #[error("Invalid image reference {reference:?}: bad registry {registry:?}")]
    Registry {
        /// The whole input.
        reference: String,
        /// The bad registry.
        registry: String,
    },
    /// The digest part is malformed.
    #[error("Invalid image reference {reference:?}")]
    Digest {
        /// The whole input.
        reference: String,
        /// Why.
        #[source]
        source: DigestError,
    },
    /// Longer than docker allows.
    #[error("Invalid image reference {0:?}: repository name longer than 255 characters")]
    TooLong(String),
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalize. Without tag and digest the tag is `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    reference: s.to_string(),
                    source,
                })?),
            ),
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_IO.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_IO.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_IO && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_registry(&registry) {
            return Err(ReferenceError::Registry {
                reference: s.to_string(),
                registry,
            });
        }
        if !valid_repository(&repository) {
            return Err(ReferenceError::Repository {
                reference: s.to_string(),
                repo: repository,
            });
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(ReferenceError::TooLong(s.to_string()));
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: s.to_string(),
                    tag: t.clone(),
                });
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `docker.io`, `localhost:5000`, ...
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `library/busybox`, ...
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same name with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The short form docker prints: `busybox:latest`, `user/app:1`,
    /// `localhost/busybox:latest`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DOCKER_IO {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        };
        self.suffixed(name)
    }

    fn suffixed(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The full, normalized form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffixed(self.name()))
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok = match port {
        None => true,
        Some(p) => !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()),
    };
    host_ok && port_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` per component, `/` between.
fn valid_repository(repo: &str) -> bool {
    repo.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("index.docker.io/library/x:1"), "docker.io/library/x:1");
        assert_eq!(full("localhost/busybox"), "localhost/busybox:latest");
        assert_eq!(full("localhost:5000/a/b:v2"), "localhost:5000/a/b:v2");
        assert_eq!(full("quay.io/org/img:tag"), "quay.io/org/img:tag");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        let r = Reference::parse(&format!("127.0.0.1:5000/x:t@{d}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("localhost/x").unwrap().familiar(),
            "localhost/x:latest"
        );
        assert_eq!(full("a__b/c-d--e.f_g"), "docker.io/a__b/c-d--e.f_g:latest");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "BusyBox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "/busybox",
            "busybox/",
            "a..b",
            "a___b",
            "-a",
            "busybox@sha256:abc",
            "busybox@md5:abc",
            "bad_host:5000x/a",
            "busybox:tag/x",
            "../../etc",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Reference::parse("Upper").unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
    }
}
