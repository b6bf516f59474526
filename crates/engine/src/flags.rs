//! Parsers for the `run`/`create` flags whose values have a syntax of their
//! own: `--restart`, `--tmpfs`, `--ulimit`, `--security-opt`. Each error
//! names the flag and the value.

use crate::error::{EngineError, Result};
use crate::record::{RestartPolicy, SeccompMode, TmpfsMount, Ulimit};

fn invalid(option: &'static str, value: &str, reason: &str) -> EngineError {
    EngineError::InvalidOption {
        option,
        reason: format!("{value:?}: {reason}"),
    }
}

/// `--restart no|on-failure[:N]|always|unless-stopped`.
pub fn restart(value: &str) -> Result<RestartPolicy> {
    let (name, count) = match value.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (value, None),
    };
    let policy = match name {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => {
            let max_retries = match count {
                None => 0,
                Some(c) => c
                    .parse()
                    .map_err(|_| invalid("--restart", value, "the retry count is not a number"))?,
            };
            return Ok(RestartPolicy::OnFailure { max_retries });
        }
        _ => {
            return Err(invalid(
                "--restart",
                value,
                "expected no, on-failure[:N], always or unless-stopped",
            ))
        }
    };
    if count.is_some() {
        return Err(invalid(
            "--restart",
            value,
            "only on-failure takes a retry count",
        ));
    }
    Ok(policy)
}

/// The tmpfs options docker accepts (plus `mode`, `size`, `uid`, `gid`, `nr_inodes`).
const TMPFS_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];
const TMPFS_KEYS: &[&str] = &["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"];

/// `--tmpfs /path[:opt,opt=value,...]`.
pub fn tmpfs(value: &str) -> Result<TmpfsMount> {
    let (dest, opts) = value.split_once(':').unwrap_or((value, ""));
    if !dest.starts_with('/') {
        return Err(invalid("--tmpfs", value, "the path must be absolute"));
    }
    if dest.split('/').any(|c| c == "..") {
        return Err(invalid("--tmpfs", value, "the path must not contain .."));
    }
    let mut options = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let ok = match o.split_once('=') {
            Some((k, v)) => TMPFS_KEYS.contains(&k) && !v.is_empty(),
            None => TMPFS_FLAGS.contains(&o),
        };
        if !ok {
            return Err(invalid(
                "--tmpfs",
                value,
                &format!("unknown mount option {o:?}"),
            ));
        }
        options.push(o.to_owned());
    }
    Ok(TmpfsMount {
        destination: dest.to_owned(),
        options,
    })
}

/// `--ulimit name=soft[:hard]` (docker's names: nofile, nproc, core, ...).
pub fn ulimit(value: &str) -> Result<Ulimit> {
    const NAMES: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| invalid("--ulimit", value, "expected NAME=SOFT[:HARD]"))?;
    if !NAMES.contains(&name) {
        return Err(invalid(
            "--ulimit",
            value,
            &format!("unknown limit {name:?}"),
        ));
    }
    let number = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            return Ok(u64::MAX);
        }
        s.parse()
            .map_err(|_| invalid("--ulimit", value, &format!("{s:?} is not a number")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => {
            let n = number(limits)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(invalid(
            "--ulimit",
            value,
            "the soft limit is above the hard limit",
        ));
    }
    Ok(Ulimit {
        name: format!("RLIMIT_{}", name.to_ascii_uppercase()),
        soft,
        hard,
    })
}

/// What `--security-opt` values set.
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    /// `no-new-privileges[:true|false]`.
    pub no_new_privileges: bool,
    /// `seccomp=unconfined|PATH`.
    pub seccomp: SeccompMode,
}

/// `--security-opt` values, in order (later ones win).
pub fn security_opts(values: &[String]) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for value in values {
        let (key, arg) = value
            .split_once(['=', ':'])
            .map_or((value.as_str(), None), |(k, v)| (k, Some(v)));
        match (key, arg) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => out.seccomp = SeccompMode::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let data = std::fs::read(path).map_err(|e| {
                    invalid("--security-opt", value, &format!("cannot read {path}: {e}"))
                })?;
                let profile: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
                    invalid("--security-opt", value, &format!("{path} is not JSON: {e}"))
                })?;
                out.seccomp = SeccompMode::Custom(profile);
            }
            ("label" | "apparmor", Some(_)) => {} // no LSM on the hosts vessel targets
            _ => {
                return Err(invalid(
                    "--security-opt",
                    value,
                    "expected no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json",
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(
            restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            restart("on-failure").unwrap(),
            RestartPolicy::OnFailure { max_retries: 0 }
        );
        for bad in ["sometimes", "on-failure:x", "always:2", "on-failure:-1"] {
            let e = restart(bad).unwrap_err().to_string();
            assert!(e.contains("--restart") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn tmpfs_specs() {
        let t = tmpfs("/run:size=64m,noexec").unwrap();
        assert_eq!(t.destination, "/run");
        assert_eq!(t.options, ["size=64m", "noexec"]);
        assert!(tmpfs("/tmp").unwrap().options.is_empty());
        for bad in ["tmp", "/a/../b", "/x:bogus", "/x:size="] {
            let e = tmpfs(bad).unwrap_err().to_string();
            assert!(e.contains("--tmpfs"), "{e}");
        }
    }

    #[test]
    fn ulimit_specs() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_str(), u.soft, u.hard),
            ("RLIMIT_NOFILE", 1024, 2048)
        );
        let u = ulimit("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        for bad in ["nofile", "files=1", "nofile=x", "nofile=10:5"] {
            let e = ulimit(bad).unwrap_err().to_string();
            assert!(e.contains("--ulimit"), "{e}");
        }
    }

    #[test]
    fn security_options() {
        let s = security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()]).unwrap();
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, SeccompMode::Unconfined);
        assert!(
            !security_opts(&["no-new-privileges:false".into()])
                .unwrap()
                .no_new_privileges
        );
        let e = security_opts(&["seccomp=/does/not/exist.json".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/does/not/exist.json"), "{e}");
        assert!(security_opts(&["selinux=1".into()]).is_err());
    }
}
