//! The OCI runtime spec (`config.json`) of a container: its
//! [`ContainerConfig`] plus docker's secure defaults — the default capability
//! set, the default seccomp profile, masked and read-only paths, the default
//! mounts and namespaces, and a device cgroup that denies all but the
//! standard devices.

pub mod caps;
mod defaults;
pub mod seccomp;
pub mod user;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use crate::options::{set_env, DEFAULT_PATH};
use crate::record::{ContainerConfig, NetworkMode, SeccompMode};
use user::ResolvedUser;

/// The cgroup every engine container gets (under each hierarchy).
pub fn cgroup_path(id: &str) -> String {
    format!("/vessel/{id}")
}

/// Where `--init`'s init binary appears inside the container (docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Host binaries `--init` can use: tini, statically linked (Debian's `tini`
/// package), so that it runs in any image.
const INIT_CANDIDATES: &[&str] = &["/usr/bin/tini-static", "/usr/bin/docker-init"];

/// The host's init binary for `--init`.
pub fn find_init() -> Result<String> {
    INIT_CANDIDATES
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
        .map(|p| (*p).to_owned())
        .ok_or_else(|| EngineError::InvalidOption {
            option: "--init",
            reason: format!(
                "no static init binary on the host (looked for {}; install the tini package)",
                INIT_CANDIDATES.join(", ")
            ),
        })
}

/// The spec of container `id`, whose rootfs is `rootfs` next to config.json.
/// `init_binary` is the host's init for `--init` ([`find_init`]).
pub fn generate(
    id: &str,
    cfg: &ContainerConfig,
    user: &ResolvedUser,
    init_binary: Option<&str>,
) -> Result<Spec> {
    let mut caps = caps::resolve(&cfg.cap_add, &cfg.cap_drop, cfg.privileged);
    if let Some(host) = caps::host_bounding() {
        caps.retain(|c| host.contains(c));
    }
    let mut env = Vec::new();
    if !cfg.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    env.push(format!("HOSTNAME={}", cfg.hostname));
    for e in &cfg.env {
        set_env(&mut env, e);
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    let mut sysctl = json!({});
    if matches!(cfg.network, NetworkMode::None | NetworkMode::Bridge) {
        namespaces.push(json!({"type": "network"}));
        // Docker's defaults for a private network namespace.
        sysctl = json!({
            "net.ipv4.ip_unprivileged_port_start": "0",
            "net.ipv4.ping_group_range": "0 2147483647",
        });
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroup_path(id),
        "resources": resources(cfg),
        "sysctl": sysctl,
    });
    if !cfg.privileged {
        linux["maskedPaths"] = json!(defaults::MASKED_PATHS);
        linux["readonlyPaths"] = json!(defaults::READONLY_PATHS);
    }
    let profile = match (&cfg.seccomp, cfg.privileged) {
        (SeccompMode::Unconfined, _) | (SeccompMode::Default, true) => None,
        (SeccompMode::Default, false) => Some(seccomp::default_profile(&caps)?),
        (SeccompMode::Custom(p), _) => Some(seccomp::custom_profile(p)?),
    };
    if let Some(p) = profile {
        linux["seccomp"] = serde_json::to_value(p).map_err(EngineError::Seccomp)?;
    }

    let mut mounts = match defaults::mounts(cfg.privileged) {
        Value::Array(m) => m,
        other => vec![other],
    };
    for t in &cfg.tmpfs {
        let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
        options.extend(t.options.iter().cloned());
        mounts.push(json!({
            "destination": t.destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": options,
        }));
    }
    let mut args = cfg.args();
    if let Some(init) = init_binary {
        mounts.push(json!({
            "destination": INIT_PATH,
            "type": "bind",
            "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"],
        }));
        args.splice(0..0, [INIT_PATH.to_owned(), "--".to_owned()]);
    }
    let rlimits: Vec<Value> = cfg
        .ulimits
        .iter()
        .map(|u| json!({"type": u.name, "soft": u.soft, "hard": u.hard}))
        .collect();

    let spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": cfg.tty,
            "user": {
                "uid": user.uid,
                "gid": user.gid,
                "additionalGids": user.additional_gids,
            },
            "args": args,
            "env": env,
            "cwd": cfg.working_dir,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": cfg.no_new_privileges,
            "rlimits": rlimits,
        },
        "root": {"path": "rootfs", "readonly": cfg.read_only},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(spec).map_err(|source| EngineError::Spec {
        id: id.to_owned(),
        source,
    })
}

fn resources(cfg: &ContainerConfig) -> Value {
    let devices = if cfg.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        // The runtime appends the standard devices to a deny-all start.
        json!([{"allow": false, "access": "rwm"}])
    };
    let mut r = json!({"devices": devices});
    let l = &cfg.limits;
    if let Some(m) = l.memory {
        // Docker: without --memory-swap, as much swap as memory.
        let swap = l.memory_swap.unwrap_or(m.saturating_mul(2));
        r["memory"] = json!({"limit": m, "swap": swap});
    }
    if let Some(n) = l.nano_cpus {
        let period: i64 = 100_000;
        r["cpu"] = json!({"quota": n * period / 1_000_000_000, "period": period});
    }
    if let Some(p) = l.pids_limit {
        r["pids"] = json!({"limit": p});
    }
    if let Some(shares) = cfg.cpu_shares {
        let cpu = r
            .as_object_mut()
            .and_then(|o| o.entry("cpu").or_insert_with(|| json!({})).as_object_mut());
        if let Some(cpu) = cpu {
            cpu.insert("shares".into(), json!(shares));
        }
    }
    r
}

#[cfg(test)]
mod tests;
