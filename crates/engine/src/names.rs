//! Container ids and names, as docker makes them.
//!
//! An id is 64 lowercase hex digits (32 random bytes). A name matches
//! `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; when the user gives none, one is made up
//! from an adjective and a scientist's surname (`brave_curie`).

use std::io::Read;

use crate::error::{EngineError, Result};

/// A fresh random container id (64 hex digits).
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let path = "/dev/urandom";
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(EngineError::io("cannot read", path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `s` looks like a full container id.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Check a user-given container name (docker's rule; a leading `/`, which
/// docker shows in `inspect`, is accepted and dropped).
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut bytes = n.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    // Names are file-name-like keys in the index; keep them bounded.
    if !first_ok || !rest_ok || n.len() > 253 {
        return Err(EngineError::InvalidName(name.to_owned()));
    }
    Ok(n.to_owned())
}

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "eager", "fair", "fond",
    "gentle", "happy", "keen", "kind", "lucid", "merry", "modest", "nimble", "noble", "patient",
    "proud", "quick", "quiet", "sharp", "steady", "sweet", "tender", "vivid", "wise", "zealous",
];

const SURNAMES: &[&str] = &[
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ramanujan",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "wozniak",
];

/// A generated name, picked from `seed` (e.g. bytes of the new id). Attempt
/// `n > 0` appends `n`, for when the plain name is taken.
pub fn generated_name(seed: &str, attempt: u32) -> String {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let a = ADJECTIVES[(h % ADJECTIVES.len() as u64) as usize];
    let s = SURNAMES[((h >> 32) % SURNAMES.len() as u64) as usize];
    if attempt == 0 {
        format!("{a}_{s}")
    } else {
        format!("{a}_{s}{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_full_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(!is_full_id("abc"));
        assert!(!is_full_id(&a.to_uppercase()));
    }

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["a", "web", "my_app-1.2", "0x", "/web"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_name("/web").unwrap(), "web");
        for bad in [
            "",
            "_a",
            ".a",
            "-a",
            "a b",
            "a/b",
            "ä",
            "a:b",
            "/",
            &"a".repeat(254),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_names_are_valid_and_vary_with_the_seed() {
        let a = generated_name("seed-one", 0);
        assert!(validate_name(&a).is_ok());
        assert!(validate_name(&generated_name("x", 7)).is_ok());
        assert!(generated_name("x", 7).ends_with('7'));
        let distinct: std::collections::HashSet<_> =
            (0..50).map(|i| generated_name(&i.to_string(), 0)).collect();
        assert!(distinct.len() > 20);
    }
}
