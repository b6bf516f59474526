//! `WWW-Authenticate` headers (RFC 7235): one or more challenges, each a
//! scheme and `name=value` parameters, values plain tokens or quoted strings.
//!
//! The header comes from the network, so the parser is strict and bounded:
//! limited length and parameter count, no unterminated quotes, no duplicate
//! parameters, no control characters.

use std::collections::BTreeMap;

/// The longest header accepted (real ones are under 300 bytes).
pub const MAX_HEADER: usize = 8 << 10;
/// The most challenges and parameters per challenge accepted.
const MAX_ITEMS: usize = 32;

/// Why a `WWW-Authenticate` header does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    /// Longer than [`MAX_HEADER`].
    #[error("WWW-Authenticate header is {0} bytes, more than the 8 KiB accepted")]
    TooLong(usize),
    /// No challenge at all.
    #[error("WWW-Authenticate header is empty")]
    Empty,
    /// Too many challenges or parameters.
    #[error("WWW-Authenticate header has more than {MAX_ITEMS} challenges or parameters")]
    TooMany,
    /// A syntax error at a byte offset.
    #[error("Malformed WWW-Authenticate header at byte {at}: {what}")]
    Syntax {
        /// Offset of the problem.
        at: usize,
        /// What was expected.
        what: &'static str,
    },
    /// The same parameter twice in one challenge.
    #[error("WWW-Authenticate header repeats parameter {0:?}")]
    Duplicate(String),
}

/// An authentication scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `Basic`: user and password on every request.
    Basic,
    /// `Bearer`: a token from the `realm` endpoint.
    Bearer,
    /// Anything else (lowercased).
    Other(String),
}

/// One challenge: a scheme and its parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme.
    pub scheme: Scheme,
    /// `realm`, `service`, `scope`, ...
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by (lowercase) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` header value into its challenges.
pub fn parse(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    if header.len() > MAX_HEADER {
        return Err(ChallengeError::TooLong(header.len()));
    }
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if p.at_end() {
            break;
        }
        if out.len() == MAX_ITEMS {
            return Err(ChallengeError::TooMany);
        }
        let scheme = p.token();
        if scheme.is_empty() {
            return Err(p.error("expected an authentication scheme"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "basic" => Scheme::Basic,
            "bearer" => Scheme::Bearer,
            other => Scheme::Other(other.to_string()),
        };
        let params = p.params()?;
        out.push(Challenge { scheme, params });
    }
    if out.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn error(&self, what: &'static str) -> ChallengeError {
        ChallengeError::Syntax { at: self.i, what }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(is_tchar);
        // tchars are ASCII, so this slice is valid UTF-8.
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// `name=value` pairs until the next challenge's scheme or the end.
    fn params(&mut self) -> Result<BTreeMap<String, String>, ChallengeError> {
        let mut params = BTreeMap::new();
        loop {
            let save = self.i;
            self.skip(|b| b == b' ' || b == b'\t' || b == b',');
            if self.at_end() {
                return Ok(params);
            }
            let name = self.token();
            if name.is_empty() {
                return Err(self.error("expected a parameter name"));
            }
            self.skip(|b| b == b' ' || b == b'\t');
            if self.peek() != Some(b'=') {
                // A token not followed by `=` starts the next challenge.
                self.i = save;
                return Ok(params);
            }
            self.i += 1;
            self.skip(|b| b == b' ' || b == b'\t');
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                let v = self.token();
                if v.is_empty() {
                    return Err(self.error("expected a parameter value"));
                }
                v
            };
            if params.len() == MAX_ITEMS {
                return Err(ChallengeError::TooMany);
            }
            let name = name.to_ascii_lowercase();
            if params.contains_key(&name) {
                return Err(ChallengeError::Duplicate(name));
            }
            params.insert(name, value);
            self.skip(|b| b == b' ' || b == b'\t');
            match self.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(self.error("expected ',' between parameters")),
            }
        }
    }

    /// A quoted string with backslash escapes; no control characters.
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if !is_ctl(b) => out.push(b),
                        _ => return Err(self.error("bad escape in quoted string")),
                    }
                    self.i += 1;
                }
                Some(b) if is_ctl(b) => {
                    return Err(self.error("control character in quoted string"))
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        // Input is a &str and only whole bytes were copied: still UTF-8.
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in quoted string"))
    }
}

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, Scheme::Bearer);
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c[0].scheme, Scheme::Basic);
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        let c = parse(r#"basic realm=x, BEARER Realm="a\"b", error=insufficient_scope"#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(c[1].scheme, Scheme::Bearer);
        assert_eq!(c[1].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        let c = parse("Negotiate").unwrap();
        assert_eq!(c[0].scheme, Scheme::Other("negotiate".into()));
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn rejects_malicious_input() {
        let cases: Vec<String> = vec![
            "".into(),
            "   ,, ".into(),
            r#"Bearer realm="unterminated"#.into(),
            "Bearer realm=".into(),
            "Bearer =x".into(),
            "Bearer realm=\"a\nb\"".into(),
            "Bearer realm=\"a\\\u{7f}\"".into(),
            r#"Bearer realm="a" "b""#.into(),
            r#"Bearer realm="a",realm="b""#.into(),
            "\"Bearer\"".into(),
            format!("Bearer realm=\"{}\"", "a".repeat(MAX_HEADER)),
            (0..40)
                .map(|i| format!("p{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
                .replace("p0=v", "Bearer p0=v"),
            "A, ".repeat(40),
        ];
        for bad in &cases {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse(r#"Bearer realm="a",REALM="b""#),
            Err(ChallengeError::Duplicate("realm".into()))
        );
        let e = parse(r#"Bearer realm="x"#).unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
    }

    #[test]
    fn never_panics_on_prefixes() {
        let full = r#"Bearer realm="https://h/t\"x",service=reg , scope="repository:a/b:pull,push" Basic realm=r"#;
        for end in 0..=full.len() {
            if full.is_char_boundary(end) {
                let _ = parse(&full[..end]);
            }
        }
    }
}
