//! The part of `/etc/containers/registries.conf` vessel reads: which
//! registries are insecure (plain HTTP). Both podman's v2 form
//! (`[[registry]] location = "host:port" insecure = true`) and the older
//! `[registries.insecure] registries = [...]` are understood; every other
//! setting of the file is ignored, not refused, so a podman host's file works.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Where podman keeps it.
pub const DEFAULT_PATH: &str = "/etc/containers/registries.conf";
/// Larger than anything real.
const MAX_FILE: u64 = 1 << 20;

/// Failures reading a registries config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Registries config {path}: read")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("Registries config {path} is not valid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: toml::de::Error,
    },
    /// Larger than 1 MiB.
    #[error("Registries config {0} is larger than 1 MiB")]
    TooLarge(PathBuf),
}

/// The registries marked insecure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Locations (`host[:port][/namespace]`) to reach over plain HTTP.
    pub insecure: Vec<String>,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    registry: Vec<Entry>,
    #[serde(default)]
    registries: Option<V1>,
}

#[derive(serde::Deserialize)]
struct Entry {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    insecure: bool,
}

#[derive(serde::Deserialize)]
struct V1 {
    #[serde(default)]
    insecure: Option<V1List>,
}

#[derive(serde::Deserialize)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

impl RegistriesConf {
    /// Read `path` (or [`DEFAULT_PATH`]); a missing file means no
    /// insecure registries.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = path.unwrap_or(Path::new(DEFAULT_PATH));
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut data = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut data)
            .map_err(|source| ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if data.len() as u64 > MAX_FILE {
            return Err(ConfigError::TooLarge(path.to_path_buf()));
        }
        let text = String::from_utf8_lossy(&data);
        Self::parse(path, &text)
    }

    /// Parse the text of a registries config.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut insecure: Vec<String> = file
            .registry
            .into_iter()
            .filter(|e| e.insecure)
            .filter_map(|e| e.location.or(e.prefix))
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(list) = file.registries.and_then(|r| r.insecure) {
            insecure.extend(list.registries.into_iter().filter(|l| !l.is_empty()));
        }
        Ok(RegistriesConf { insecure })
    }

    /// Whether `registry` (`host[:port]`) is marked insecure: a location
    /// equal to it or below it (`host:port/namespace`), or a `*.domain`
    /// wildcard covering its host.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        self.insecure.iter().any(|loc| {
            let loc_reg = loc.split('/').next().unwrap_or(loc);
            loc_reg == registry
                || loc_reg
                    .strip_prefix("*.")
                    .is_some_and(|dom| host.ends_with(&format!(".{dom}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RegistriesConf, ConfigError> {
        RegistriesConf::parse(Path::new("registries.conf"), s)
    }

    #[test]
    fn reads_insecure_entries_and_ignores_the_rest() {
        let c = parse(
            r#"
unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"

[[registry]]
location = "reg.local:5000"
insecure = true

[[registry]]
location = "quay.io"
blocked = false
[[registry.mirror]]
location = "mirror.local"

[[registry]]
prefix = "*.corp"
location = "*.corp"
insecure = true

[registries.insecure]
registries = ["old.local"]
"#,
        )
        .unwrap();
        assert!(c.is_insecure("reg.local:5000"));
        assert!(!c.is_insecure("reg.local:5001"));
        assert!(!c.is_insecure("quay.io"));
        assert!(c.is_insecure("build.corp"));
        assert!(c.is_insecure("a.b.corp:443"));
        assert!(!c.is_insecure("corp"));
        assert!(!c.is_insecure("evilcorp"));
        assert!(c.is_insecure("old.local"));
        assert!(!c.is_insecure("mirror.local"));
    }

    #[test]
    fn rejects_malformed_files() {
        for bad in [
            "[[registry]\nlocation = 1",
            "[[registry]]\nlocation = 1\ninsecure = true",
            "[[registry]]\ninsecure = \"yes\"",
            "registry = 3",
            "[registries.insecure]\nregistries = \"x\"",
            "location = \"a\"\nlocation = \"b\"",
            "\u{0}",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.to_string().contains("registries.conf"), "{e}");
        }
        assert_eq!(parse("").unwrap(), RegistriesConf::default());
    }

    #[test]
    fn missing_and_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let none = RegistriesConf::load(Some(&dir.path().join("absent"))).unwrap();
        assert!(none.insecure.is_empty());
        let big = dir.path().join("big.conf");
        std::fs::write(&big, vec![b'#'; (MAX_FILE + 10) as usize]).unwrap();
        assert!(matches!(
            RegistriesConf::load(Some(&big)),
            Err(ConfigError::TooLarge(_))
        ));
    }
}
