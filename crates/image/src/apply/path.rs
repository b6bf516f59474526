//! Turning a path from a tar entry into components under the target root.

use std::ffi::CString;

/// Why an entry's path is refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The path has a `..` component: it could name something outside the
    /// root (no real image needs one, so it is refused, not reinterpreted).
    #[error("Path {0:?} has a '..' component")]
    DotDot(String),
    /// The path contains a NUL byte.
    #[error("Path {0:?} contains a NUL byte")]
    Nul(String),
}

/// The components of `raw` relative to the root: a leading `/` and `.`
/// components are dropped (an absolute path is read as inside the root),
/// `..` is refused. An empty result names the root itself.
pub fn components(raw: &[u8]) -> Result<Vec<CString>, PathError> {
    let show = || String::from_utf8_lossy(raw).into_owned();
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(PathError::DotDot(show())),
            c => out.push(CString::new(c).map_err(|_| PathError::Nul(show()))?),
        }
    }
    Ok(out)
}

/// The components joined with `/` (relative; `.` for the root).
pub fn join(comps: &[CString]) -> CString {
    if comps.is_empty() {
        return c".".to_owned();
    }
    let mut v = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c.to_bytes());
    }
    CString::new(v).expect("components hold no NUL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &str) -> Result<String, PathError> {
        components(raw.as_bytes()).map(|c| join(&c).into_string().unwrap())
    }

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(s("./a/b/").unwrap(), "a/b");
        assert_eq!(s("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(s("./").unwrap(), ".");
        assert!(matches!(s("../x"), Err(PathError::DotDot(_))));
        assert!(matches!(s("a/../../x"), Err(PathError::DotDot(_))));
        assert!(matches!(s("a/.."), Err(PathError::DotDot(_))));
        assert_eq!(s("a/..b/c..").unwrap(), "a/..b/c..");
    }
}
