//! What a registry says when it refuses: the HTTP status mapped to an error
//! variant, and the distribution spec's JSON error body
//! (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`) kept as the
//! error's source so the user reads the registry's own words.

use std::io::Read;

use crate::error::RegistryError;

/// Most of an error body read (they are short JSON documents).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// The errors a registry listed in its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// `(code, message)` pairs.
    pub errors: Vec<(String, String)>,
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (code, message)) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // The text comes from the network: keep it printable.
            let clean =
                |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(200).collect() };
            write!(f, "{}: {}", clean(code), clean(message))?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorBody {}

impl ErrorBody {
    /// Parse an error body; `None` if it is not the spec's shape.
    pub fn parse(data: &[u8]) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Body {
            errors: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let body: Body = serde_json::from_slice(data).ok()?;
        let errors: Vec<_> = body
            .errors
            .into_iter()
            .take(8)
            .map(|i| (i.code, i.message))
            .collect();
        (!errors.is_empty()).then_some(ErrorBody { errors })
    }
}

/// Where a request went, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub registry: String,
    pub repository: String,
    pub what: String,
}

/// The error for an unexpected HTTP status, reading the body for details.
pub(crate) fn status_error(place: &Place, status: u16, resp: ureq::Response) -> RegistryError {
    let mut data = Vec::new();
    let _ = resp
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut data);
    from_status(place, status, ErrorBody::parse(&data))
}

/// The variant for `status`.
pub(crate) fn from_status(place: &Place, status: u16, detail: Option<ErrorBody>) -> RegistryError {
    let Place {
        registry,
        repository,
        what,
    } = place.clone();
    match status {
        401 => RegistryError::Unauthorized {
            registry,
            repository,
            what,
            detail,
        },
        403 => RegistryError::Denied {
            registry,
            repository,
            what,
            detail,
        },
        404 => RegistryError::NotFound {
            registry,
            repository,
            what,
            detail,
        },
        429 => RegistryError::TooManyRequests {
            registry,
            repository,
            what,
            detail,
        },
        500..=599 => RegistryError::Server {
            registry,
            repository,
            what,
            status,
            detail,
        },
        _ => RegistryError::Status {
            registry,
            repository,
            what,
            status,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_bodies_and_ignores_others() {
        let b = ErrorBody::parse(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        )
        .unwrap();
        assert_eq!(b.to_string(), "MANIFEST_UNKNOWN: manifest unknown");
        assert!(ErrorBody::parse(b"<html>oops</html>").is_none());
        assert!(ErrorBody::parse(br#"{"errors":[]}"#).is_none());
        let evil = ErrorBody::parse(
            "{\"errors\":[{\"code\":\"X\",\"message\":\"a\\u001b[2Jb\"}]}".as_bytes(),
        )
        .unwrap();
        assert_eq!(evil.to_string(), "X: a[2Jb");
    }

    #[test]
    fn statuses_name_registry_repository_and_code() {
        let place = Place {
            registry: "reg:5000".into(),
            repository: "team/app".into(),
            what: "manifest v1".into(),
        };
        for (status, word) in [
            (401, "401"),
            (403, "403"),
            (404, "404"),
            (429, "429"),
            (503, "503"),
            (418, "418"),
        ] {
            let e = from_status(&place, status, None).to_string();
            assert!(e.contains("reg:5000"), "{e}");
            assert!(e.contains("team/app"), "{e}");
            assert!(e.contains(word), "{e}");
        }
    }
}
