//! Docker's default seccomp profile, kept as data (`seccomp_default.json`),
//! and its resolution for a container's capabilities.
//!
//! The data file is docker's documented default profile for x86_64: an
//! allow-list (everything else fails with EPERM), with the rules that docker
//! makes depend on capabilities marked `ifCap` (kept only when the container
//! has the capability) or `unlessCap` (kept only when it has not). Rules of
//! other architectures are left out; docker's "kernel ≥ 4.8" condition on
//! `ptrace` is taken as true (vessel needs a newer kernel anyway).

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// The data file.
pub const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Profile {
    default_action: String,
    default_errno_ret: u32,
    architectures: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<serde_json::Value>,
    #[serde(default)]
    if_cap: Option<String>,
    #[serde(default)]
    unless_cap: Option<String>,
}

/// The default profile for a container whose bounding set is `caps`
/// (`CAP_*` names), as an OCI `linux.seccomp`.
pub fn default_profile(caps: &[String]) -> Result<LinuxSeccomp> {
    let profile: Profile = serde_json::from_str(DEFAULT_PROFILE).map_err(EngineError::Seccomp)?;
    let has = |c: &String| caps.iter().any(|x| x == c);
    let syscalls: Vec<serde_json::Value> = profile
        .rules
        .iter()
        .filter(|r| r.if_cap.as_ref().is_none_or(has))
        .filter(|r| !r.unless_cap.as_ref().is_some_and(has))
        .map(|r| {
            let mut v = serde_json::json!({ "names": r.names, "action": r.action });
            if let Some(e) = r.errno_ret {
                v["errnoRet"] = e.into();
            }
            if !r.args.is_empty() {
                v["args"] = r.args.clone().into();
            }
            v
        })
        .collect();
    let oci = serde_json::json!({
        "defaultAction": profile.default_action,
        "defaultErrnoRet": profile.default_errno_ret,
        "architectures": profile.architectures,
        "syscalls": syscalls,
    });
    serde_json::from_value(oci).map_err(EngineError::Seccomp)
}

/// A user's profile (`--security-opt seccomp=FILE`): the OCI `linux.seccomp`
/// shape, or docker's profile format, whose extra keys are translated
/// (`archMap` → `architectures`) or dropped (`comment`, and the
/// `includes`/`excludes` conditions: every rule applies).
pub fn custom_profile(profile: &serde_json::Value) -> Result<LinuxSeccomp> {
    let bad = |reason: String| EngineError::InvalidOption {
        option: "--security-opt seccomp",
        reason,
    };
    let mut p = profile
        .as_object()
        .cloned()
        .ok_or_else(|| bad("the profile is not a JSON object".into()))?;
    if let Some(map) = p.remove("archMap") {
        if !p.contains_key("architectures") {
            let archs: Vec<serde_json::Value> = map
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("architecture").cloned())
                .collect();
            p.insert("architectures".into(), archs.into());
        }
    }
    if let Some(rules) = p.get_mut("syscalls").and_then(|s| s.as_array_mut()) {
        for rule in rules.iter_mut().filter_map(|r| r.as_object_mut()) {
            for key in ["comment", "includes", "excludes"] {
                rule.remove(key);
            }
        }
    }
    p.remove("comment");
    serde_json::from_value(p.into()).map_err(|e| bad(format!("not a seccomp profile: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompAction;

    fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().as_ref().unwrap().iter().any(|s| {
            s.names().iter().any(|n| n == name)
                && s.action() == LinuxSeccompAction::ScmpActAllow
                && s.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    fn default_caps() -> Vec<String> {
        super::super::caps::DEFAULT
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn defaults_allow_the_usual_and_deny_the_dangerous() {
        let p = default_profile(&default_caps()).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        for ok in ["read", "execve", "clone3", "chroot", "arch_prctl", "ptrace"] {
            // clone3 appears, but as ENOSYS: checked below.
            if ok != "clone3" {
                assert!(allowed(&p, ok), "{ok}");
            }
        }
        for denied in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "init_module",
            "bpf",
            "kcmp",
        ] {
            assert!(!allowed(&p, denied), "{denied}");
        }
        let clone3 = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|s| *s.names() == ["clone3"]);
        assert_eq!(
            clone3.unwrap().errno_ret(),
            Some(38),
            "clone3 -> ENOSYS, so libc falls back"
        );
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        caps.push("CAP_SYS_PTRACE".into());
        let p = default_profile(&caps).unwrap();
        for ok in ["mount", "unshare", "setns", "clone", "clone3", "kcmp"] {
            assert!(allowed(&p, ok), "{ok}");
        }
        let enosys = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .any(|s| s.errno_ret() == Some(38));
        assert!(!enosys, "with CAP_SYS_ADMIN clone3 is allowed, not ENOSYS");
    }

    #[test]
    fn custom_profiles_in_oci_and_docker_shape() {
        let oci = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
        });
        let p = custom_profile(&oci).unwrap();
        assert!(!allowed(&p, "mkdir"));
        let docker = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                          "comment": "", "includes": {}, "excludes": {}}],
        });
        let p = custom_profile(&docker).unwrap();
        assert!(allowed(&p, "read"));
        assert_eq!(p.architectures().as_ref().map(Vec::len), Some(1));
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"defaultAction": 3}),
        ] {
            let e = custom_profile(&bad).unwrap_err().to_string();
            assert!(e.contains("seccomp"), "{e}");
        }
    }

    #[test]
    fn compiles_into_at_most_two_filters() {
        for extra in [None, Some("CAP_SYS_ADMIN")] {
            let mut caps = default_caps();
            caps.extend(extra.map(String::from));
            let p = default_profile(&caps).unwrap();
            let compiled = vessel_seccomp::compile(&p).unwrap();
            let n = compiled.filter_count();
            assert!((1..=2).contains(&n), "{extra:?}: {n} filters");
        }
    }
}
