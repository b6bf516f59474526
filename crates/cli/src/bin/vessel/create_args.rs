//! The flags of `vessel create` and `vessel run` (docker's names), and their
//! translation into the engine's [`CreateOptions`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use vessel_engine::CreateOptions;

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy the caller's).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint ("" clears it).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory + swap limit (-1: unlimited swap).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs (PATH[:OPTIONS]).
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Bind mount a host path or mount a volume ([SOURCE:]DEST[:OPTIONS]).
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]DEST[:OPTS]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…,…).
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount the volumes of another container (CONTAINER[:ro|rw]).
    #[arg(long, value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Ulimit (NAME=SOFT[:HARD]).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (no-new-privileges, seccomp=unconfined|FILE).
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Restart policy (no, on-failure[:N], always, unless-stopped).
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Network: bridge (the default), none, host, a network's name, or container:NAME|ID.
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a container's port on the host ([HOST_IP:][HOST_PORT:]PORT[/tcp|udp]).
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST_PORT:]PORT[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on random host ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Isolation: container (a VM-isolated run is not built yet).
    #[arg(long, default_value = "container")]
    pub isolation: String,
    /// The image, then the command and its arguments. One list, so that
    /// everything after the image belongs to the command (`sh -c …` must
    /// not be read as `--cpu-shares`).
    #[arg(value_name = "IMAGE [COMMAND [ARG...]]", required = true, num_args = 1..,
          trailing_var_arg = true, allow_hyphen_values = true)]
    pub image_and_command: Vec<String>,
}

/// `64m`, `1g`, `512k`, `1024`, `1.5g` → bytes (docker's RAMInBytes).
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .with_context(|| format!("Invalid option {flag}: {s:?} is not a size (e.g. 64m, 1g)"))?;
    let bytes = n * mult as f64;
    if bytes > i64::MAX as f64 {
        bail!("Invalid option {flag}: {s:?} is too large");
    }
    Ok(bytes as i64)
}

/// One `--env-file`: `KEY=VALUE` lines; blank lines and `#` comments are
/// skipped; a bare `KEY` takes the caller's value (docker's rule).
fn read_env_file(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Invalid option --env-file: cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(expand_env)
        .collect())
}

/// `KEY=VALUE` as is; a bare `KEY` becomes `KEY=<caller's value>`, or is
/// dropped when the caller has none (docker's rule).
fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_owned());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

impl CreateArgs {
    /// The engine's options.
    pub fn to_options(&self) -> Result<CreateOptions> {
        if self.isolation != "container" {
            bail!(
                "Invalid option --isolation: {:?} (only \"container\" is available yet)",
                self.isolation
            );
        }
        let (network, networks, network_container) = crate::network::parse_mode(&self.network)?;
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| expand_env(e)));
        let memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(-1),
            Some(s) => Some(parse_bytes("--memory-swap", s)?),
        };
        Ok(CreateOptions {
            image: self.image_and_command[0].clone(),
            name: self.name.clone(),
            cmd: self.image_and_command[1..].to_vec(),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            memory: self
                .memory
                .as_deref()
                .map(|m| parse_bytes("-m", m))
                .transpose()?,
            memory_swap,
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            read_only: self.read_only,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            network,
            networks,
            network_container,
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            tty: self.tty,
            interactive: self.interactive,
            auto_remove: self.rm,
            restart: self.restart.clone(),
            cpu_shares: self.cpu_shares,
            tmpfs: self.tmpfs.clone(),
            volumes: self.volume.clone(),
            mounts: self.mount.clone(),
            volumes_from: self.volumes_from.clone(),
            no_image_volumes: false,
            ulimits: self.ulimit.clone(),
            security_opts: self.security_opt.clone(),
            init: self.init,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("-m", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("-m", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-m", "512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("-m", "1000").unwrap(), 1000);
        assert_eq!(parse_bytes("-m", "1.5g").unwrap(), 3 << 29);
        for bad in ["", "m", "-5m", "12x", "nan"] {
            let e = parse_bytes("-m", bad).unwrap_err().to_string();
            assert!(e.contains("-m"), "{e}");
        }
    }

    #[test]
    fn env_files_and_bare_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# comment\n\nA=1\n  B=two words\nPATH\nVESSEL_NOPE_X\n").unwrap();
        let got = read_env_file(&f).unwrap();
        assert_eq!(got[0], "A=1");
        assert_eq!(got[1], "B=two words");
        assert!(got[2].starts_with("PATH="));
        assert_eq!(got.len(), 3, "unset bare keys are dropped");
        let e = read_env_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--env-file") && e.contains("missing"), "{e}");
    }
}
