//! Credentials in the auth.json format podman and skopeo use
//! (`{"auths": {"registry": {"auth": base64("user:password")}}}`), also
//! reading docker's `~/.docker/config.json`, which has the same shape.
//!
//! Writes keep every other field of the file (other registries, docker's
//! `credsStore`, ...) and replace it atomically with mode 0600.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

/// Largest auth file read (real ones are a few KiB).
const MAX_FILE: u64 = 1 << 20;

/// Failures reading or writing an auth file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file could not be read or written.
    #[error("Auth file {path}: {op}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// Not JSON of the expected shape.
    #[error("Auth file {path} is not valid auth.json")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// Larger than anything real.
    #[error("Auth file {0} is larger than 1 MiB")]
    TooLarge(PathBuf),
    /// An entry whose `auth` is not base64 of `user:password`.
    #[error("Auth file {path}: the entry for {registry} is not base64 of user:password")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// The entry's key.
        registry: String,
    },
}

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never print a password into a log or an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of a `Basic` Authorization header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where credentials are read from and written to.
#[derive(Debug, Clone)]
pub struct AuthFile {
    /// The file `login` writes (and read first).
    pub path: PathBuf,
    /// Read after `path` when it has no entry (docker's config.json, ...).
    pub fallbacks: Vec<PathBuf>,
}

impl AuthFile {
    /// podman's choice: `override`, else `$REGISTRY_AUTH_FILE`, else
    /// `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/`
    /// without it); then `~/.config/containers/auth.json` and docker's
    /// `config.json` (`$DOCKER_CONFIG` or `~/.docker`) as read-only fallbacks.
    pub fn locate(over: Option<&Path>) -> Self {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let path = match (over, env("REGISTRY_AUTH_FILE")) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => match env("XDG_RUNTIME_DIR") {
                Some(d) => Path::new(&d).join("containers/auth.json"),
                None => PathBuf::from(format!("/run/containers/{}/auth.json", uid())),
            },
        };
        let mut fallbacks = Vec::new();
        if let Some(home) = env("HOME") {
            fallbacks.push(Path::new(&home).join(".config/containers/auth.json"));
        }
        match (env("DOCKER_CONFIG"), env("HOME")) {
            (Some(d), _) => fallbacks.push(Path::new(&d).join("config.json")),
            (None, Some(h)) => fallbacks.push(Path::new(&h).join(".docker/config.json")),
            (None, None) => {}
        }
        fallbacks.retain(|p| p != &path);
        AuthFile { path, fallbacks }
    }

    /// The credentials for `registry` (`docker.io`, `host:port`), from the
    /// first file that has an entry for it.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, AuthFileError> {
        for path in std::iter::once(&self.path).chain(&self.fallbacks) {
            let Some(doc) = read(path)? else { continue };
            if let Some(c) = lookup(path, &doc, registry)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Store credentials for `registry` in [`AuthFile::path`].
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), AuthFileError> {
        let mut doc = read(&self.path)?.unwrap_or_default();
        let raw = format!("{}:{}", creds.username, creds.password);
        let auth = base64::engine::general_purpose::STANDARD.encode(raw);
        auths_mut(&mut doc).insert(normalize(registry), serde_json::json!({ "auth": auth }));
        write(&self.path, &doc)
    }

    /// Remove the entry for `registry` from [`AuthFile::path`]; whether
    /// there was one.
    pub fn remove(&self, registry: &str) -> Result<bool, AuthFileError> {
        let Some(mut doc) = read(&self.path)? else {
            return Ok(false);
        };
        let want = normalize(registry);
        let auths = auths_mut(&mut doc);
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize(k) == want)
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        if keys.is_empty() {
            return Ok(false);
        }
        write(&self.path, &doc)?;
        Ok(true)
    }
}

fn uid() -> u32 {
    // getuid cannot fail; through libc's safe wrapper in std would need
    // unsafe, so read it from /proc instead.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(0)
}

/// The registry an auth.json key names: docker's `https://index.docker.io/v1/`
/// and podman's `docker.io` are the same; scheme and a `/v1/`/`/v2/` path
/// are dropped. Keys with a repository path stay as they are (podman's
/// per-namespace entries), so they never match a bare registry.
pub fn normalize(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = match k.split_once('/') {
        Some((host, "v1" | "v1/" | "v2" | "v2/" | "")) => host,
        _ => k,
    };
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Parse an auth file's bytes (exposed for tests and fuzzing).
pub fn parse(path: &Path, data: &[u8]) -> Result<Map<String, Value>, AuthFileError> {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(default)]
        #[allow(dead_code)] // only checked for shape
        auths: Option<BTreeMap<String, Map<String, Value>>>,
    }
    let parse_err = |source| AuthFileError::Parse {
        path: path.to_path_buf(),
        source,
    };
    serde_json::from_slice::<Shape>(data).map_err(parse_err)?;
    serde_json::from_slice(data).map_err(parse_err)
}

fn read(path: &Path) -> Result<Option<Map<String, Value>>, AuthFileError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthFileError::Io {
                op: "open",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut data = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|source| AuthFileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 > MAX_FILE {
        return Err(AuthFileError::TooLarge(path.to_path_buf()));
    }
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    parse(path, &data).map(Some)
}

/// The entry for `registry` in a parsed file.
pub fn lookup(
    path: &Path,
    doc: &Map<String, Value>,
    registry: &str,
) -> Result<Option<Credentials>, AuthFileError> {
    let want = normalize(registry);
    let Some(Value::Object(auths)) = doc.get("auths") else {
        return Ok(None);
    };
    // An exact key wins over a normalized one (both may be present).
    let entry = auths.get(registry).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| normalize(k) == want)
            .map(|e| e.1)
    });
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else {
        return Ok(None);
    };
    if auth.is_empty() {
        return Ok(None);
    }
    let bad = || AuthFileError::BadEntry {
        path: path.to_path_buf(),
        registry: want.clone(),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, pass) = raw.split_once(':').ok_or_else(bad)?;
    if user.is_empty() {
        return Err(bad());
    }
    Ok(Some(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    }))
}

fn auths_mut(doc: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("auths is an object")
}

/// Replace the file atomically: temp file (0600) beside it, fsync, rename.
fn write(path: &Path, doc: &Map<String, Value>) -> Result<(), AuthFileError> {
    let io_err = |op| {
        let path = path.to_path_buf();
        move |source| AuthFileError::Io { op, path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create the directory of"))?;
    let tmp = dir.join(format!(
        ".auth.json.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let data = serde_json::to_vec_pretty(doc).expect("a JSON map serializes");
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err("write"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn reads_podman_and_docker_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let podman = dir.path().join("auth.json");
        let docker = dir.path().join("config.json");
        fs::write(
            &podman,
            format!(
                r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#,
                b64("alice:pa:ss")
            ),
        )
        .unwrap();
        fs::write(
            &docker,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}},"credsStore":"x"}}"#,
                b64("bob:secret")
            ),
        )
        .unwrap();
        let a = AuthFile {
            path: podman,
            fallbacks: vec![docker],
        };
        let c = a.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pa:ss")
        );
        let c = a.get("docker.io").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert!(a.get("quay.io").unwrap().is_none());
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn store_and_remove_keep_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        let a = AuthFile {
            path: path.clone(),
            fallbacks: vec![],
        };
        let creds = |u: &str| Credentials {
            username: u.into(),
            password: "pw".into(),
        };
        a.store("one:1", &creds("u1")).unwrap();
        a.store("two:2", &creds("u2")).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(a.get("one:1").unwrap().unwrap().username, "u1");
        assert!(a.remove("one:1").unwrap());
        assert!(!a.remove("one:1").unwrap());
        assert!(a.get("one:1").unwrap().is_none());
        assert_eq!(a.get("two:2").unwrap().unwrap().username, "u2");
    }

    #[test]
    fn rejects_malicious_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let a = AuthFile {
            path: path.clone(),
            fallbacks: vec![],
        };
        for bad in [
            "{".to_string(),
            r#"{"auths": []}"#.to_string(),
            r#"{"auths": {"r": "x"}}"#.to_string(),
            r#"[1,2]"#.to_string(),
            format!(r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#, "!!notbase64"),
            format!(r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#, b64("nocolon")),
            format!(r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#, b64(":emptyuser")),
            format!(r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#, "/w=="),
        ] {
            fs::write(&path, &bad).unwrap();
            assert!(a.get("r").is_err(), "{bad:?} accepted");
        }
        // A file that does not parse is never overwritten by a login.
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        for bad in ["{", r#"{"auths": []}"#, "[1,2]"] {
            fs::write(&path, bad).unwrap();
            assert!(a.store("r", &creds).is_err(), "{bad:?} overwritten");
            assert_eq!(fs::read_to_string(&path).unwrap(), bad);
        }
        fs::write(&path, vec![b' '; (MAX_FILE + 1) as usize]).unwrap();
        assert!(matches!(a.get("r"), Err(AuthFileError::TooLarge(_))));
        // An entry with a bad auth for another registry does not matter.
        fs::write(&path, r#"{"auths":{"other":{"auth":"!!"}}}"#).unwrap();
        assert!(a.get("r").unwrap().is_none());
    }

    #[test]
    fn normalizes_keys() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize("registry-1.docker.io"), "docker.io");
        assert_eq!(normalize("http://h:5000/v2/"), "h:5000");
        assert_eq!(normalize("quay.io/org/repo"), "quay.io/org/repo");
    }
}
