//! Containers as the runtime manages them: the lifecycle operations of the
//! OCI runtime specification on top of the state store.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::Serialize;
use vessel_cgroups::{CgroupManager, CgroupPath, Manager};

use crate::bundle::{self, Bundle};
use crate::error::{Result, RuntimeError};
use crate::hooks::{self, HookKind, HookState};
use crate::init::InitContext;
use crate::namespaces::NamespacePlan;
use crate::spawn::spawn_init;
use crate::state::{self, ContainerState, StateStore, EXEC_FIFO};
use crate::sys::proc;

/// Where cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The copy of config.json kept in the state directory.
const CONFIG_COPY: &str = "config.json";

/// A container's status (runtime-spec "State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Being created.
    Creating,
    /// Created; waiting for `start`.
    Created,
    /// The user program runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerStatus::Creating => "creating",
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Stopped => "stopped",
        })
    }
}

/// Options of `create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master.
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// Extra descriptors (3..3+n) passed to the process.
    pub preserve_fds: i32,
}

/// Options of `delete`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    /// Kill a running container first.
    pub force: bool,
}

/// A container known to the state store.
#[derive(Debug)]
pub struct Container {
    store: StateStore,
    /// Persistent state.
    pub state: ContainerState,
}

impl Container {
    /// Create a container: set everything up and leave its init waiting for `start`.
    pub fn create(store: &StateStore, opts: &CreateOptions) -> Result<Container> {
        state::validate_id(&opts.id)?;
        if store.dir(&opts.id).exists() {
            return Err(RuntimeError::AlreadyExists(opts.id.clone()));
        }
        // Everything that can be checked is checked before anything exists.
        let bundle = Bundle::load(&opts.bundle)?;
        let spec = &bundle.spec;
        let linux = spec.linux().as_ref();
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => Some(vessel_seccomp::compile(profile).map_err(RuntimeError::Seccomp)?),
            None => None,
        };
        let cgroup_str = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cgroup_path = parse_cgroup_path(&cgroup_str, &opts.id, opts.systemd_cgroup)?;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = if terminal {
            let path = opts
                .console_socket
                .as_ref()
                .ok_or_else(|| RuntimeError::InvalidConfig {
                    field: "process.terminal".into(),
                    reason: "a terminal needs --console-socket to hand the pty master to".into(),
                })?;
            let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                RuntimeError::ConsoleSocket {
                    path: path.clone(),
                    source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                }
            })?;
            Some(OwnedFd::from(stream))
        } else {
            None
        };

        let dir = store.reserve(&opts.id)?;
        let mut cgroup: Option<Manager> = None;
        let result = create_in(
            store,
            opts,
            &bundle,
            &dir,
            &cgroup_str,
            &cgroup_path,
            seccomp,
            console,
            &mut cgroup,
        );
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                if let Some(cg) = cgroup {
                    let _ = cg.destroy();
                }
                let _ = store.remove(&opts.id);
                Err(e)
            }
        }
    }

    /// Load container `id`.
    pub fn load(store: &StateStore, id: &str) -> Result<Container> {
        let state = store.load(id)?;
        Ok(Container {
            store: store.clone(),
            state,
        })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The current status, derived from the init process and the FIFO.
    pub fn status(&self) -> ContainerStatus {
        if !proc::is_alive(self.state.pid, self.state.pid_start_time) {
            return ContainerStatus::Stopped;
        }
        if self.store.dir(&self.state.id).join(EXEC_FIFO).exists() {
            return ContainerStatus::Created;
        }
        if self
            .cgroup()
            .and_then(|c| c.is_frozen().map_err(|e| self.cg_err(e)))
            .unwrap_or(false)
        {
            return ContainerStatus::Paused;
        }
        ContainerStatus::Running
    }

    /// The runtime-spec state document of `state`.
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.state.id,
            "status": status,
            "bundle": self.state.bundle,
            "rootfs": self.state.rootfs,
            "created": self.state.created,
            "owner": self.state.owner,
        });
        if status != ContainerStatus::Stopped {
            v["pid"] = self.state.pid.into();
        } else {
            v["pid"] = 0.into();
        }
        if !self.state.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.state.annotations).unwrap_or_default();
        }
        v
    }

    /// The config.json the container was created from.
    pub fn spec(&self) -> Result<Spec> {
        bundle::parse_config_file(&self.store.dir(&self.state.id).join(CONFIG_COPY))
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> Result<Manager> {
        let path = parse_cgroup_path(
            &self.state.cgroup_path,
            &self.state.id,
            self.state.systemd_cgroup,
        )?;
        Manager::new(Path::new(CGROUP_ROOT), &path).map_err(|e| self.cg_err(e))
    }

    fn cg_err(&self, e: vessel_cgroups::CgroupError) -> RuntimeError {
        RuntimeError::Cgroup {
            id: self.state.id.clone(),
            source: e,
        }
    }

    fn require(
        &self,
        allowed: &[ContainerStatus],
        operation: &'static str,
    ) -> Result<ContainerStatus> {
        let status = self.status();
        if allowed.contains(&status) {
            Ok(status)
        } else {
            Err(RuntimeError::WrongState {
                id: self.state.id.clone(),
                status: status.to_string(),
                operation,
            })
        }
    }

    fn hook_state<'a>(&'a self, status: &'a str) -> HookState<'a> {
        HookState {
            oci_version: "1.2.0",
            id: &self.state.id,
            status,
            pid: Some(self.state.pid),
            bundle: self.state.bundle.to_str().unwrap_or(""),
            annotations: Some(&self.state.annotations),
        }
    }

    /// Start the user program of a created container.
    pub fn start(&mut self) -> Result<()> {
        self.require(
            &[ContainerStatus::Created],
            "start (only a created container can be started)",
        )?;
        let fifo_path = self.store.dir(&self.state.id).join(EXEC_FIFO);
        let fifo = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo_path)
            .map_err(|e| RuntimeError::io("cannot open", &fifo_path, e))?;
        self.wait_for_init_byte(&fifo)?;
        fs::remove_file(&fifo_path)
            .map_err(|e| RuntimeError::io("cannot remove", &fifo_path, e))?;
        self.state.started = true;
        self.store.save(&self.state)?;
        if let Ok(spec) = self.spec() {
            if let Err(e) = hooks::run_all(
                HookKind::Poststart,
                spec.hooks().as_ref(),
                &self.hook_state("running"),
            ) {
                // The spec says: warn, and carry on as if the hook succeeded.
                eprintln!("vessel-runtime: warning: {}", e.chain().join(": "));
            }
        }
        Ok(())
    }

    fn wait_for_init_byte(&self, fifo: &fs::File) -> Result<()> {
        use std::io::Read;
        use std::os::fd::AsFd;
        loop {
            let mut fds = [nix::poll::PollFd::new(
                fifo.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
                Ok(n) if n > 0 => {
                    let mut buf = [0u8; 1];
                    match (&*fifo).read(&mut buf) {
                        Ok(1) => return Ok(()),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(RuntimeError::io("cannot read", EXEC_FIFO, e)),
                    }
                }
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(RuntimeError::sys("poll exec.fifo", e)),
            }
            if !proc::is_alive(self.state.pid, self.state.pid_start_time) {
                return Err(RuntimeError::InitDied(
                    "the init exited while waiting for start".into(),
                ));
            }
        }
    }

    /// Send `signal` to the init (or, with `all`, to every process of the container).
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        self.require(
            &[
                ContainerStatus::Created,
                ContainerStatus::Running,
                ContainerStatus::Paused,
            ],
            "kill (the container is not running)",
        )?;
        if all {
            let cg = self.cgroup()?;
            for pid in cg.pids().map_err(|e| self.cg_err(e))? {
                let _ = kill(Pid::from_raw(pid), signal);
            }
            if signal == Signal::SIGKILL {
                // Frozen tasks (cgroup v1) only die once thawed.
                let _ = cg.thaw();
            }
            return Ok(());
        }
        kill(Pid::from_raw(self.state.pid), signal)
            .map_err(|e| RuntimeError::sys(format!("kill {} {signal}", self.state.pid), e))
    }

    /// Delete the container: its processes, cgroup and state.
    pub fn delete(self, opts: DeleteOptions) -> Result<()> {
        let status = self.status();
        match status {
            ContainerStatus::Stopped => {}
            ContainerStatus::Created => self.kill_everything(),
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating => {
                if !opts.force {
                    return Err(RuntimeError::WrongState {
                        id: self.state.id.clone(),
                        status: status.to_string(),
                        operation: "delete (use --force to kill it first)",
                    });
                }
                self.kill_everything();
            }
        }
        let spec = self.spec().ok();
        if let Ok(cg) = self.cgroup() {
            // Leftover processes (daemonized children of a stopped init) go too.
            if let Ok(pids) = cg.pids() {
                for pid in pids {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = cg.thaw();
            }
            cg.destroy().map_err(|e| self.cg_err(e))?;
        }
        self.store.remove(&self.state.id)?;
        if let Some(spec) = spec {
            if let Err(e) = hooks::run_all(
                HookKind::Poststop,
                spec.hooks().as_ref(),
                &self.hook_state("stopped"),
            ) {
                eprintln!("vessel-runtime: warning: {}", e.chain().join(": "));
            }
        }
        Ok(())
    }

    fn kill_everything(&self) {
        let _ = kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
        if let Ok(cg) = self.cgroup() {
            for pid in cg.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cg.thaw();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc::is_alive(self.state.pid, self.state.pid_start_time) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Freeze every process of the container.
    pub fn pause(&self) -> Result<()> {
        self.require(
            &[ContainerStatus::Running],
            "pause (only a running container can be paused)",
        )?;
        self.cgroup()?.freeze().map_err(|e| self.cg_err(e))
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        self.require(
            &[ContainerStatus::Paused],
            "resume (only a paused container can be resumed)",
        )?;
        self.cgroup()?.thaw().map_err(|e| self.cg_err(e))
    }

    /// Pids of the container's processes (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.cgroup()?.pids().map_err(|e| self.cg_err(e))
    }

    /// Change resource limits of a live container.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.require(
            &[
                ContainerStatus::Created,
                ContainerStatus::Running,
                ContainerStatus::Paused,
            ],
            "update (the container is stopped)",
        )?;
        self.cgroup()?
            .apply(resources)
            .map_err(|e| RuntimeError::Resources {
                id: self.state.id.clone(),
                source: e,
            })
    }

    /// Resource usage.
    pub fn stats(&self) -> Result<vessel_cgroups::Stats> {
        self.cgroup()?.stats().map_err(|e| self.cg_err(e))
    }
}

fn parse_cgroup_path(s: &str, id: &str, systemd: bool) -> Result<CgroupPath> {
    let p = (!s.is_empty()).then(|| Path::new(s));
    CgroupPath::parse(p, id, systemd).map_err(|e| RuntimeError::Cgroup {
        id: id.to_owned(),
        source: e,
    })
}

#[allow(clippy::too_many_arguments)]
fn create_in(
    store: &StateStore,
    opts: &CreateOptions,
    bundle: &Bundle,
    dir: &Path,
    cgroup_str: &str,
    cgroup_path: &CgroupPath,
    seccomp: Option<vessel_seccomp::CompiledProfile>,
    console: Option<OwnedFd>,
    cgroup_out: &mut Option<Manager>,
) -> Result<Container> {
    let spec = &bundle.spec;
    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(|e| RuntimeError::sys(format!("mkfifo {}", fifo_path.display()), e))?;
    // mkfifo applies the umask; the init must be able to open the FIFO for
    // writing even as a mapped, unprivileged uid in a user namespace.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fifo_path, fs::Permissions::from_mode(0o622))
            .map_err(|e| RuntimeError::io("cannot chmod", &fifo_path, e))?;
    }
    let exec_fifo: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| RuntimeError::io("cannot open", &fifo_path, e))?
        .into();

    let cg =
        Manager::new(Path::new(CGROUP_ROOT), cgroup_path).map_err(|e| RuntimeError::Cgroup {
            id: opts.id.clone(),
            source: e,
        })?;
    // Runs once stage 1 is forked: stage 1 and the init work while this
    // waits for the kernel (cgroup creation takes the lock a concurrent
    // cgroup move holds for a grace period, see cgroup_warmup).
    let host_setup = move || -> Result<&dyn CgroupManager> {
        let config_json = serde_json::to_vec(spec).expect("spec serializes");
        state::write_atomic(&dir.join(CONFIG_COPY), &config_json)?;
        // Kept before creating it, so that a half-created cgroup is removed too.
        let cg = cgroup_out.insert(cg);
        cg.create().map_err(|e| RuntimeError::Cgroup {
            id: opts.id.clone(),
            source: e,
        })?;
        if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            let res = crate::init::devices::with_default_cgroup_rules(res);
            cg.apply(&res).map_err(|e| RuntimeError::Resources {
                id: opts.id.clone(),
                source: e,
            })?;
        }
        Ok(&*cg)
    };

    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let ctx = InitContext {
        id: opts.id.clone(),
        spec: spec.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        plan: NamespacePlan::from_spec(&namespaces),
        exec_fifo,
        console,
        no_pivot: opts.no_pivot,
        seccomp,
        cgroup_path: cgroup_path.as_path().to_string_lossy().into_owned(),
        preserve_fds: opts.preserve_fds,
    };
    let pid = spawn_init(ctx, host_setup)?;
    let (_, start_time) = proc::stat(pid.as_raw())
        .ok_or_else(|| RuntimeError::InitDied("the init exited right after setup".into()))?;
    let st = ContainerState {
        id: opts.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: pid.as_raw(),
        pid_start_time: start_time,
        created: state::now_rfc3339(),
        cgroup_path: cgroup_str.to_owned(),
        systemd_cgroup: opts.systemd_cgroup,
        annotations: spec.annotations().clone().unwrap_or_default(),
        started: false,
        owner: nix::unistd::getuid().to_string(),
    };
    store.save(&st)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid.as_raw())?;
    }
    Ok(Container {
        store: store.clone(),
        state: st,
    })
}

/// Write a pid file atomically (containerd reads it as soon as it appears).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    fs::write(&tmp, pid.to_string())
        .map_err(|e| RuntimeError::io("cannot write pid file", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| RuntimeError::io("cannot write pid file", path, e))
}
