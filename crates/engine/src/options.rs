//! What a user asks for (`vessel create/run` flags) and how it combines with
//! the image's config into the container's [`ContainerConfig`].

use oci_spec::image::Config as ImageConfig;

use crate::error::{EngineError, Result};
use crate::flags;
use crate::record::{ContainerConfig, Limits, NetworkMode, RestartPolicy};
use crate::spec::caps;

/// The options of `vessel create`/`run`, already parsed by the CLI.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image reference (`busybox`, `localhost/app:1`, `name@sha256:...`).
    pub image: String,
    /// `--name`; generated when absent.
    pub name: Option<String>,
    /// The command after the image name (replaces the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint` (replaces the image's Entrypoint and drops its Cmd;
    /// `Some(vec![])` or `Some(vec![""])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `-e KEY=VALUE`, in order (later ones win).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-m`, in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`, in bytes (memory + swap; -1 = unlimited).
    pub memory_swap: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit` (-1 or 0 = unlimited).
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--network none|host|bridge|NAME|container:X` (the kind).
    pub network: NetworkMode,
    /// The networks of bridge mode (empty: `bridge`).
    pub networks: Vec<String>,
    /// `container:X`: the container X (name or id).
    pub network_container: Option<String>,
    /// `-p` values as given.
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes.
    pub publish_all: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--restart` as given.
    pub restart: Option<String>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--tmpfs` values as given.
    pub tmpfs: Vec<String>,
    /// `-v`/`--volume` values as given.
    pub volumes: Vec<String>,
    /// `--mount` values as given.
    pub mounts: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]` values as given.
    pub volumes_from: Vec<String>,
    /// Leave the image's VOLUME paths in the container's own filesystem
    /// instead of giving each an anonymous volume (builds: a RUN step's
    /// writes there belong in the layer, as with BuildKit).
    pub no_image_volumes: bool,
    /// `--ulimit` values as given.
    pub ulimits: Vec<String>,
    /// `--security-opt` values as given.
    pub security_opts: Vec<String>,
    /// `--init`.
    pub init: bool,
}

/// Docker's PATH for images that set none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's smallest memory limit.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn invalid(option: &'static str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

/// Set `KEY=value` in `env`, replacing an earlier value of KEY in place.
pub fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = entry.split('=').next().unwrap_or("");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry.to_owned(),
        None => env.push(entry.to_owned()),
    }
}

/// Combine the image's config with the user's options (docker's rules).
/// `id` gives the default hostname (its first 12 digits); `host_hostname`
/// is used instead with `--network host`.
pub fn merge(
    image: Option<&ImageConfig>,
    opts: &CreateOptions,
    id: &str,
    host_hostname: &str,
) -> Result<ContainerConfig> {
    let image_vec = |f: fn(&ImageConfig) -> &Option<Vec<String>>| {
        image.and_then(|c| f(c).clone()).unwrap_or_default()
    };
    let entrypoint = match &opts.entrypoint {
        Some(e) if e.iter().all(String::is_empty) => Vec::new(),
        Some(e) => e.clone(),
        None => image_vec(ImageConfig::entrypoint),
    };
    let cmd = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        image_vec(ImageConfig::cmd)
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(EngineError::NoCommand);
    }

    let mut env = Vec::new();
    for e in image_vec(ImageConfig::env) {
        set_env(&mut env, &e);
    }
    for e in &opts.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(invalid("-e", format!("{e:?} is not KEY=VALUE")));
        }
        set_env(&mut env, e);
    }

    let working_dir = opts
        .workdir
        .clone()
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !working_dir.starts_with('/') {
        return Err(invalid(
            "-w",
            format!("{working_dir:?} is not an absolute path"),
        ));
    }
    let user = opts
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .unwrap_or_default();

    let hostname = match (&opts.hostname, opts.network) {
        (Some(h), _) => h.clone(),
        (None, NetworkMode::Host) => host_hostname.to_owned(),
        (None, _) => id.chars().take(12).collect(),
    };
    let hostname_ok = !hostname.is_empty()
        && hostname.len() <= 64
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !hostname_ok {
        return Err(invalid(
            "--hostname",
            format!("{hostname:?} is not a valid hostname"),
        ));
    }

    let restart = match &opts.restart {
        Some(r) => flags::restart(r)?,
        None => RestartPolicy::No,
    };
    if opts.auto_remove && restart != RestartPolicy::No {
        return Err(invalid(
            "--restart",
            "conflicts with --rm (a removed container cannot restart)",
        ));
    }
    if opts.cpu_shares == Some(1) {
        return Err(invalid("--cpu-shares", "the minimum is 2"));
    }
    let security = flags::security_opts(&opts.security_opts)?;
    let tmpfs = opts
        .tmpfs
        .iter()
        .map(|t| flags::tmpfs(t))
        .collect::<Result<Vec<_>>>()?;
    let network = crate::network::plan(image, opts)?;
    let ulimits = opts
        .ulimits
        .iter()
        .map(|u| flags::ulimit(u))
        .collect::<Result<Vec<_>>>()?;

    Ok(ContainerConfig {
        entrypoint,
        cmd,
        env,
        working_dir,
        user,
        hostname,
        limits: limits(opts)?,
        read_only: opts.read_only,
        cap_add: normalize_caps("--cap-add", &opts.cap_add)?,
        cap_drop: normalize_caps("--cap-drop", &opts.cap_drop)?,
        privileged: opts.privileged,
        network: opts.network,
        networks: network.networks,
        network_container: network.container,
        ports: network.ports,
        tty: opts.tty,
        open_stdin: opts.interactive,
        auto_remove: opts.auto_remove,
        restart,
        cpu_shares: opts.cpu_shares.filter(|&s| s != 0),
        tmpfs,
        mounts: Vec::new(), // mounts::plan resolves them, with the stores
        ulimits,
        no_new_privileges: security.no_new_privileges,
        seccomp: security.seccomp,
        init: opts.init,
        stop_signal: image.and_then(|c| c.stop_signal().clone()),
    })
}

fn normalize_caps(option: &'static str, list: &[String]) -> Result<Vec<String>> {
    list.iter().map(|c| caps::normalize(option, c)).collect()
}

fn limits(opts: &CreateOptions) -> Result<Limits> {
    if let Some(m) = opts.memory {
        if m < MIN_MEMORY {
            return Err(invalid("-m", "the minimum memory limit is 6MB"));
        }
    }
    if let Some(s) = opts.memory_swap {
        match opts.memory {
            None if s != -1 => return Err(invalid("--memory-swap", "needs -m as well")),
            Some(m) if s != -1 && s < m => {
                return Err(invalid("--memory-swap", "must be at least the -m limit"))
            }
            _ => {}
        }
    }
    let nano_cpus = match opts.cpus {
        None => None,
        Some(c) => {
            let max = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            if !(c > 0.0 && c <= max) {
                return Err(invalid(
                    "--cpus",
                    format!("{c} is not between 0.01 and {max}"),
                ));
            }
            Some((c * 1e9).round() as i64)
        }
    };
    let pids_limit = match opts.pids_limit {
        Some(p) if p < -1 => return Err(invalid("--pids-limit", "must be positive, 0 or -1")),
        Some(p) if p <= 0 => None,
        p => p,
    };
    Ok(Limits {
        memory: opts.memory,
        memory_swap: opts.memory_swap,
        nano_cpus,
        pids_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image() -> ImageConfig {
        serde_json::from_value(serde_json::json!({
            "Entrypoint": ["/entry"],
            "Cmd": ["serve", "--port", "80"],
            "Env": ["PATH=/bin", "A=1"],
            "WorkingDir": "/app",
            "User": "www",
        }))
        .unwrap()
    }

    fn merge_with(opts: CreateOptions) -> Result<ContainerConfig> {
        merge(Some(&image()), &opts, ID, "myhost")
    }

    #[test]
    fn image_config_is_the_default() {
        let c = merge_with(CreateOptions::default()).unwrap();
        assert_eq!(c.args(), ["/entry", "serve", "--port", "80"]);
        assert_eq!(c.env, ["PATH=/bin", "A=1"]);
        assert_eq!(c.working_dir, "/app");
        assert_eq!(c.user, "www");
        assert_eq!(c.hostname, "0123456789ab");
    }

    #[test]
    fn cmd_replaces_cmd_and_entrypoint_replaces_both() {
        let c = merge_with(CreateOptions {
            cmd: vec!["x".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.args(), ["/entry", "x"]);
        let c = merge_with(CreateOptions {
            entrypoint: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.args(), ["/bin/sh"]);
        let c = merge_with(CreateOptions {
            entrypoint: Some(vec![String::new()]),
            cmd: vec!["/bin/true".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.args(), ["/bin/true"]);
        let none = merge(None, &CreateOptions::default(), ID, "h");
        assert!(matches!(none, Err(EngineError::NoCommand)));
    }

    #[test]
    fn env_workdir_user_hostname_overrides() {
        let c = merge_with(CreateOptions {
            env: vec!["A=2".into(), "B=3".into(), "A=4".into()],
            workdir: Some("/tmp".into()),
            user: Some("1000:1000".into()),
            hostname: Some("box".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.env, ["PATH=/bin", "A=4", "B=3"]);
        assert_eq!(c.working_dir, "/tmp");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.hostname, "box");
        let host = merge_with(CreateOptions {
            network: NetworkMode::Host,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(host.hostname, "myhost");
    }

    #[test]
    fn bad_options_name_the_flag() {
        let cases: Vec<(CreateOptions, &str)> = vec![
            (
                CreateOptions {
                    env: vec!["NOVALUE".into()],
                    ..Default::default()
                },
                "-e",
            ),
            (
                CreateOptions {
                    workdir: Some("rel".into()),
                    ..Default::default()
                },
                "-w",
            ),
            (
                CreateOptions {
                    hostname: Some("a b".into()),
                    ..Default::default()
                },
                "--hostname",
            ),
            (
                CreateOptions {
                    memory: Some(1024),
                    ..Default::default()
                },
                "-m",
            ),
            (
                CreateOptions {
                    memory_swap: Some(1 << 30),
                    ..Default::default()
                },
                "--memory-swap",
            ),
            (
                CreateOptions {
                    cpus: Some(0.0),
                    ..Default::default()
                },
                "--cpus",
            ),
            (
                CreateOptions {
                    cpus: Some(10_000.0),
                    ..Default::default()
                },
                "--cpus",
            ),
            (
                CreateOptions {
                    pids_limit: Some(-5),
                    ..Default::default()
                },
                "--pids-limit",
            ),
            (
                CreateOptions {
                    cap_add: vec!["NOPE".into()],
                    ..Default::default()
                },
                "--cap-add",
            ),
        ];
        for (opts, flag) in cases {
            let e = merge_with(opts).unwrap_err().to_string();
            assert!(e.contains(flag), "{flag}: {e}");
        }
    }

    #[test]
    fn limits_are_converted() {
        let c = merge_with(CreateOptions {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            pids_limit: Some(100),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.limits.memory, Some(64 << 20));
        assert_eq!(c.limits.nano_cpus, Some(500_000_000));
        assert_eq!(c.limits.pids_limit, Some(100));
        let unlimited = merge_with(CreateOptions {
            pids_limit: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(unlimited.limits.pids_limit, None);
    }
}
