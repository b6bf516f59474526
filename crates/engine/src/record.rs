//! What the engine remembers about a container (`container.json`): who it
//! is, what it was made from, how it is configured, and what state it is in.

use serde::{Deserialize, Serialize};

/// The metadata of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name (without docker's leading `/`).
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it, normalized (`docker.io/library/busybox:latest`).
    pub image: String,
    /// The image ID: the digest of its config (`sha256:...`).
    pub image_id: String,
    /// The container's configuration (the image's, with the user's options applied).
    pub config: ContainerConfig,
    /// The lifecycle state.
    pub state: ContainerState,
}

/// `--network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A network namespace of its own with only loopback (docker's `none`).
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// Attached to bridge networks (`bridge` or user-defined ones, listed
    /// in `ContainerConfig::networks`).
    Bridge,
    /// Another container's network namespace (`container:ID`, the id in
    /// `ContainerConfig::network_container`).
    Container,
}

/// Resource limits (`-m`, `--memory-swap`, `--cpus`, `--pids-limit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes (-1: unlimited swap).
    pub memory_swap: Option<i64>,
    /// CPU quota in billionths of a CPU (docker's NanoCpus).
    pub nano_cpus: Option<i64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
}

/// The configuration a container runs with, resolved at creation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// Entrypoint (image's or `--entrypoint`).
    pub entrypoint: Vec<String>,
    /// Command (image's Cmd or the user's).
    pub cmd: Vec<String>,
    /// Environment, `KEY=value`, image's first, the user's overriding.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub working_dir: String,
    /// User as given (`name`, `uid`, `name:group`, `uid:gid`); empty is root.
    pub user: String,
    /// Hostname.
    pub hostname: String,
    /// Resource limits.
    pub limits: Limits,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`, normalized (`CAP_NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`, normalized.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--network`.
    pub network: NetworkMode,
    /// The networks of bridge mode (`--network bridge|NAME`, `network
    /// connect`), the first one primary.
    #[serde(default)]
    pub networks: Vec<String>,
    /// The container whose network namespace `--network container:X` joins (its id).
    #[serde(default)]
    pub network_container: Option<String>,
    /// `-p`/`-P`: the ports to publish.
    #[serde(default)]
    pub ports: Vec<vessel_net::PortSpec>,
    /// `-t`: the process gets a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: stdin stays open (attached runs relay the caller's stdin).
    #[serde(default)]
    pub open_stdin: bool,
    /// `--rm`: the monitor removes the container when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--cpu-shares` (relative weight; cgroup v1 cpu.shares).
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// `--tmpfs PATH[:OPTIONS]`: tmpfs mounts, path and mount options.
    #[serde(default)]
    pub tmpfs: Vec<TmpfsMount>,
    /// Bind mounts and volumes (`-v`, `--mount`, `--volumes-from`, the
    /// image's VOLUME list), resolved at creation.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountPoint>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--security-opt no-new-privileges`.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=...`.
    #[serde(default)]
    pub seccomp: SeccompMode,
    /// `--init`: an init process reaps zombies and forwards signals.
    #[serde(default)]
    pub init: bool,
    /// The signal `stop` sends first (the image's StopSignal; SIGTERM by default).
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// `--restart`: what the monitor does when the container exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (docker's default).
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure {
        /// The most restarts; 0 is unlimited.
        max_retries: u32,
    },
    /// Restart after every exit, unless stopped by the user.
    Always,
    /// As `always`; the difference (across daemon restarts) does not exist
    /// without a daemon, so vessel treats both the same.
    UnlessStopped,
}

/// A `--tmpfs` mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Where, inside the container (absolute).
    pub destination: String,
    /// Mount options (`size=64m`, `mode=1777`, `ro`, ...).
    pub options: Vec<String>,
}

/// A `--ulimit` (an OCI rlimit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `RLIMIT_NOFILE`, ...
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// `--security-opt seccomp=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// docker's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile read from a file at create time (OCI or docker JSON).
    Custom(serde_json::Value),
}

impl ContainerConfig {
    /// The process arguments: entrypoint followed by command.
    pub fn args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// Lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or being started).
    Created,
    /// The process runs.
    Running,
    /// The process is frozen (`pause`).
    Paused,
    /// The monitor is restarting the process (`--restart`).
    Restarting,
    /// The process has ended.
    Exited,
}

impl Status {
    /// Whether a process (or a monitor about to restart one) exists.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        })
    }
}

/// The container's state, as docker's `State`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// created | running | exited.
    pub status: Status,
    /// Host pid of the container's init while running, else 0.
    pub pid: i32,
    /// Exit code of the last run (128+N when killed by signal N).
    pub exit_code: Option<i32>,
    /// Why the last start failed, if it did.
    pub error: Option<String>,
    /// RFC 3339 time of the last start.
    pub started_at: Option<String>,
    /// RFC 3339 time of the last exit.
    pub finished_at: Option<String>,
    /// Pid of the monitor process while it runs, else 0.
    #[serde(default)]
    pub monitor_pid: i32,
    /// How many times the monitor restarted the container (`--restart`).
    #[serde(default)]
    pub restart_count: u32,
    /// `stop`/`kill` by the user: the restart policy does not apply.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// The process was OOM-killed (its cgroup's OOM-kill count rose).
    #[serde(default)]
    pub oom_killed: bool,
}

impl ContainerState {
    /// The state of a new container.
    pub fn created() -> Self {
        ContainerState {
            status: Status::Created,
            pid: 0,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            monitor_pid: 0,
            restart_count: 0,
            stopped_by_user: false,
            oom_killed: false,
        }
    }
}
