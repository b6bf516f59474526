//! Loading and validating an OCI bundle (`config.json` + root filesystem).
//!
//! config.json is untrusted input: every check here names the field that is
//! wrong, and nothing is created on the host before the whole file passed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Result, RuntimeError};

/// The largest config.json we accept; a bigger one is a mistake or an attack.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
}

impl Bundle {
    /// Read `config.json` from `dir` and check it.
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| RuntimeError::io("cannot open bundle directory", dir, e))?;
        let path = dir.join("config.json");
        let spec = parse_config_file(&path)?;
        let rootfs = resolve_rootfs(&dir, &spec)?;
        validate(&spec)?;
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Parse a config.json file, naming the offending field on error.
pub fn parse_config_file(path: &Path) -> Result<Spec> {
    let file = std::fs::File::open(path).map_err(|e| RuntimeError::ReadConfig {
        path: path.to_owned(),
        source: e,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_CONFIG_BYTES {
        return Err(RuntimeError::InvalidConfig {
            field: "config.json".into(),
            reason: format!("file is {len} bytes, more than the {MAX_CONFIG_BYTES} accepted"),
        });
    }
    let data = std::fs::read(path).map_err(|e| RuntimeError::ReadConfig {
        path: path.to_owned(),
        source: e,
    })?;
    parse_config(&data).map_err(|(field, message)| RuntimeError::ParseConfig {
        path: path.to_owned(),
        field,
        message,
    })
}

/// Parse config.json bytes; on error return the JSON path of the field and the reason.
pub fn parse_config(data: &[u8]) -> std::result::Result<Spec, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(top level)".to_string()
        } else {
            field
        };
        (field, e.into_inner().to_string())
    })
}

fn resolve_rootfs(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig {
            field: "root".into(),
            reason: "missing (a Linux container needs root.path)".into(),
        })?;
    let path = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&path).map_err(|e| RuntimeError::Io {
        action: "root.path: cannot open rootfs",
        path: path.clone(),
        source: e,
    })?;
    if !rootfs.is_dir() {
        return Err(RuntimeError::InvalidConfig {
            field: "root.path".into(),
            reason: format!("{} is not a directory", rootfs.display()),
        });
    }
    Ok(rootfs)
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Semantic checks that serde cannot express.
pub fn validate(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{:?} is not a 1.x runtime-spec version", spec.version()),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing (create needs a process to run)"))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(invalid(
                "process.args",
                "must name at least the program to run",
            ))
        }
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not an absolute path", process.cwd().display()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
                return Err(invalid(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    if let Some(rlimits) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rlimits.iter().enumerate() {
            if r.soft() > r.hard() {
                return Err(invalid(
                    format!("process.rlimits[{i}]"),
                    format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
                ));
            }
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(invalid(
                    format!("process.rlimits[{i}]"),
                    format!("{:?} is set twice", r.typ()),
                ));
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{} is not an absolute path", m.destination().display()),
            ));
        }
    }
    if let Some(hostname) = spec.hostname() {
        if hostname.len() > 64 {
            return Err(invalid("hostname", "longer than 64 bytes"));
        }
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut types = HashSet::new();
    for (i, ns) in namespaces.into_iter().flatten().enumerate() {
        if !types.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("{} appears twice", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.exists() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} does not exist", path.display()),
                ));
            }
        }
    }
    let new_userns = namespaces
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.is_some_and(|l| l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
    if new_userns && !has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !types.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting a hostname needs a new uts namespace",
        ));
    }
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for key in sysctl.keys() {
            if key.contains('/') || key.contains("..") || key.is_empty() {
                return Err(invalid(format!("linux.sysctl.{key}"), "not a sysctl name"));
            }
        }
    }
    for (field, list) in [
        (
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        ),
        (
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        ),
    ] {
        for (i, p) in list.into_iter().flatten().enumerate() {
            if !p.starts_with('/') {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!("{p} is not an absolute path"),
                ));
            }
        }
    }
    if let Some(prop) = linux.and_then(|l| l.rootfs_propagation().as_ref()) {
        if crate::init::mounts::propagation_flag(prop).is_none() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("{prop:?} is not a propagation type"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> std::result::Result<(), String> {
        let spec = parse_config(v.to_string().as_bytes()).map_err(|(f, m)| format!("{f}: {m}"))?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_config_is_valid() {
        check(minimal()).unwrap();
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = minimal();
        v["process"]["user"]["uid"] = serde_json::json!("root");
        let err = check(v).unwrap_err();
        assert!(err.contains("process.user.uid"), "{err}");
    }

    #[test]
    fn not_json_is_rejected() {
        let err = parse_config(b"{\"ociVersion\": ").unwrap_err();
        assert!(err.1.contains("EOF"), "{err:?}");
    }

    #[test]
    fn empty_args_rejected() {
        let mut v = minimal();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).unwrap_err().contains("process.args"));
    }

    #[test]
    fn relative_cwd_rejected() {
        let mut v = minimal();
        v["process"]["cwd"] = serde_json::json!("tmp");
        assert!(check(v).unwrap_err().contains("process.cwd"));
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(check(v).unwrap_err().contains("linux.namespaces[1]"));
    }

    #[test]
    fn missing_namespace_path_rejected() {
        let mut v = minimal();
        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "network", "path": "/proc/no/such/ns"}]);
        let err = check(v).unwrap_err();
        assert!(
            err.contains("linux.namespaces[0].path") && err.contains("/proc/no/such/ns"),
            "{err}"
        );
    }

    #[test]
    fn userns_without_mappings_rejected() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        assert!(check(v).unwrap_err().contains("uidMappings"));
    }

    #[test]
    fn rlimit_soft_above_hard_rejected() {
        let mut v = minimal();
        v["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
        assert!(check(v).unwrap_err().contains("process.rlimits[0]"));
    }

    #[test]
    fn bad_sysctl_key_rejected() {
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"../../etc/passwd": "x"});
        assert!(check(v).unwrap_err().contains("linux.sysctl"));
    }

    #[test]
    fn env_without_equals_rejected() {
        let mut v = minimal();
        v["process"]["env"] = serde_json::json!(["PATH=/bin", "JUNK"]);
        assert!(check(v).unwrap_err().contains("process.env[1]"));
    }

    #[test]
    fn old_version_rejected() {
        let mut v = minimal();
        v["ociVersion"] = serde_json::json!("0.5.0");
        assert!(check(v).unwrap_err().contains("ociVersion"));
    }

    #[test]
    fn unknown_capability_names_the_field() {
        let mut v = minimal();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        let err = check(v).unwrap_err();
        assert!(err.contains("process.capabilities.bounding"), "{err}");
    }

    #[test]
    fn hostname_without_uts_rejected() {
        let mut v = minimal();
        v["hostname"] = serde_json::json!("box");
        assert!(check(v).unwrap_err().contains("uts"));
    }
}
