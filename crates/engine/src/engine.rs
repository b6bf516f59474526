//! The engine's entry points: what `vessel create/start/run/rm/ps/inspect`
//! call. Each is one function over the image store, the container store and
//! the runtime.

use std::path::PathBuf;

use vessel_image::manifest::Platform;
use vessel_image::{ImageStore, Reference};
use vessel_runtime::{Container, DeleteOptions, RuntimeError, StateStore};

use crate::error::{EngineError, Result};
use crate::monitor;
pub use crate::monitor::{Attach, Outcome, Stdio};
use crate::mounts;
use crate::names;
use crate::options::{self, CreateOptions};
use crate::record::{ContainerRecord, ContainerState};
use crate::rootfs;
use crate::spec::{self, user::UserDb};
use crate::store::{self, ContainerStore};
use crate::volumes::VolumeStore;

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Images and containers (`--root`, `VESSEL_ROOT`; default `/var/lib/vessel`).
    pub root: PathBuf,
    /// Runtime state, gone at reboot (default `/run/vessel`).
    pub run_root: PathBuf,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            root: std::env::var_os("VESSEL_ROOT")
                .map_or_else(|| PathBuf::from("/var/lib/vessel"), PathBuf::from),
            run_root: PathBuf::from("/run/vessel"),
        }
    }
}

/// The engine over one root.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    images: ImageStore,
    containers: ContainerStore,
    volumes: VolumeStore,
}

/// How many generated names are tried before giving up.
const NAME_ATTEMPTS: u32 = 20;

impl Engine {
    /// Open (creating if needed) the stores under `config`'s directories.
    /// The image store is `<root>` itself (an OCI layout); containers live
    /// in `<root>/containers`, the runtime's state in `<run_root>/runtime`.
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let images = ImageStore::open(&config.root).map_err(|source| EngineError::Image {
            image: config.root.display().to_string(),
            source: Box::new(source),
        })?;
        let containers = ContainerStore::open(config.root.join("containers"))?;
        let volumes = VolumeStore::open(config.root.join("volumes"))?;
        Ok(Engine {
            config,
            images,
            containers,
            volumes,
        })
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The container store.
    pub fn containers(&self) -> &ContainerStore {
        &self.containers
    }

    /// The volume store (`<root>/volumes`).
    pub fn volumes(&self) -> &VolumeStore {
        &self.volumes
    }

    /// Where the engine keeps its state.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The runtime's state directory.
    pub fn runtime_root(&self) -> PathBuf {
        self.config.run_root.join("runtime")
    }

    /// `vessel create`: a container from `opts`, with its rootfs mounted and
    /// its bundle written, in state `created`. On failure nothing is left.
    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerRecord> {
        let reference = Reference::parse(&opts.image).map_err(|source| EngineError::Reference {
            reference: opts.image.clone(),
            source,
        })?;
        let image_err = |source| EngineError::Image {
            image: opts.image.clone(),
            source: Box::new(source),
        };
        let image = self
            .images
            .image(&reference, &Platform::linux_amd64())
            .map_err(image_err)?;
        let id = names::new_id()?;
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut config = options::merge(image.config.config().as_ref(), opts, &id, &host)?;
        mounts::plan(self, image.config.config().as_ref(), opts, &mut config)?;
        let top = self.images.unpack(&image).map_err(image_err)?;
        self.reconcile_networks()?;
        let config = crate::network::check(self, config)?;

        let mut record = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: vessel_runtime::state::now_rfc3339(),
            image: reference.to_string(),
            image_id: image.config_digest.to_string(),
            config,
            state: ContainerState::created(),
        };
        let new_volumes =
            mounts::reserve_volumes(&self.volumes, &record.config.mounts.clone(), || {
                self.add_with_name(&mut record, opts.name.as_deref())
            })?;
        let rootfs = self.containers.rootfs(&id);
        let made = rootfs::prepare(&self.images, &id, top.as_deref(), &rootfs).and_then(|()| {
            let user = UserDb::read(&rootfs)?.resolve(&record.config.user)?;
            rootfs::ensure_dir(&rootfs, &record.config.working_dir)?;
            let init = if record.config.init {
                Some(spec::find_init()?)
            } else {
                None
            };
            for t in &record.config.tmpfs {
                rootfs::ensure_dir(&rootfs, &t.destination)?;
            }
            mounts::prepare(&self.volumes, &rootfs, &record.config.mounts)?;
            let mut spec = spec::generate(&id, &record.config, &user, init.as_deref())?;
            mounts::add_to_spec(&mut spec, &self.volumes, &record.config.mounts)?;
            crate::network::add_to_spec(self, &record, &mut spec)?;
            store::write_json(&self.containers.dir(&id).join("config.json"), &spec)
        });
        if let Err(e) = made {
            let _ = rootfs::remove(&self.images, &id, &rootfs);
            let _ = self.containers.remove(&id);
            mounts::release_volumes(self, &new_volumes);
            return Err(e);
        }
        Ok(record)
    }

    fn add_with_name(&self, record: &mut ContainerRecord, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            record.name = names::validate_name(n)?;
            return self.containers.create(record);
        }
        for attempt in 0..NAME_ATTEMPTS {
            record.name = names::generated_name(&record.id, attempt);
            match self.containers.create(record) {
                Err(EngineError::NameInUse { .. }) => continue,
                other => return other,
            }
        }
        Err(EngineError::NameInUse {
            name: record.name.clone(),
            id: "(every generated name is taken)".into(),
        })
    }

    /// `vessel start [-a]`: run a created or exited container under a new
    /// monitor. Attached, returns its exit code; detached, once it runs.
    pub fn start(&self, container: &str, attach: Attach) -> Result<Outcome> {
        let id = self.containers.resolve(container)?;
        let record = self.reconcile(self.containers.load(&id)?)?;
        if record.state.status.is_active() {
            return Err(EngineError::WrongState {
                id,
                status: record.state.status.to_string(),
                operation: "start (it is already running)",
            });
        }
        self.containers.update(&id, |r| {
            r.state.stopped_by_user = false;
            r.state.restart_count = 0;
            Ok(())
        })?;
        rootfs::ensure_mounted(&self.images, &id, &self.containers.rootfs(&id))?;
        monitor::start(self, &id, attach)
    }

    /// `vessel run`: create and start. With `opts.auto_remove` (`--rm`) the
    /// monitor removes the container when it exits, and a failed start
    /// removes it at once. Returns the container's id and the outcome.
    pub fn run(&self, opts: &CreateOptions, attach: Attach) -> Result<(String, Outcome)> {
        let record = self.create(opts)?;
        match self.start(&record.id, attach) {
            Ok(outcome) => Ok((record.id, outcome)),
            Err(e) => {
                if opts.auto_remove {
                    let _ = self.remove(&record.id, true);
                }
                Err(e)
            }
        }
    }

    /// Where the monitor listens for the pty master of container `id`
    /// (short: a socket path has at most 107 bytes).
    pub(crate) fn console_socket_path(&self, id: &str) -> PathBuf {
        self.config
            .run_root
            .join("console")
            .join(format!("{}.sock", &id[..id.len().min(16)]))
    }

    /// `vessel inspect`: the container's record (reconciled, see
    /// [`Engine::reconcile`]).
    pub fn inspect(&self, container: &str) -> Result<ContainerRecord> {
        self.reconcile(self.containers.load(&self.containers.resolve(container)?)?)
    }

    /// `vessel ps -a`: every container, oldest first (reconciled).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        self.reconcile_networks()?;
        self.containers
            .list()?
            .into_iter()
            .map(|r| self.reconcile(r))
            .collect()
    }

    /// `vessel rm [-f]`: remove the container, its rootfs mount, writable
    /// layer, runtime state, cgroup, metadata and name. A running container
    /// needs `force` (it is killed).
    pub fn remove(&self, container: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(container, force, false)
    }

    /// `vessel rm [-f] [-v]`: [`Engine::remove`], and with `volumes` the
    /// container's anonymous volumes that no other container uses.
    pub fn remove_with_volumes(&self, container: &str, force: bool, volumes: bool) -> Result<()> {
        let id = self.containers.resolve(container)?;
        let record = self.reconcile(self.containers.load(&id)?)?;
        if record.state.status.is_active() {
            if !force {
                return Err(EngineError::WrongState {
                    id,
                    status: record.state.status.to_string(),
                    operation: "remove (stop it first, or force the removal)",
                });
            }
            self.kill_now(&id)?;
        }
        self.remove_exited_with(&id, volumes)
    }

    /// Remove a container that no monitor runs (or that its own monitor,
    /// done with it, removes for `--rm`).
    pub(crate) fn remove_exited(&self, id: &str) -> Result<()> {
        self.remove_exited_with(id, false)
    }

    /// [`Engine::remove_exited`]; anonymous volumes go too with `volumes`
    /// or when the container was made with `--rm` (docker's behaviour).
    fn remove_exited_with(&self, id: &str, volumes: bool) -> Result<()> {
        let mounts = self.containers.load(id).map(|r| {
            let anonymous = volumes || r.config.auto_remove;
            (anonymous, r.config.mounts)
        });
        let id = id.to_owned();
        let rt_err = |source| EngineError::Runtime {
            id: id.clone(),
            source: Box::new(source),
        };
        let rt = StateStore::open(&self.runtime_root()).map_err(rt_err)?;
        match Container::load(&rt, &id) {
            Ok(c) => c.delete(DeleteOptions { force: true }).map_err(rt_err)?,
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(rt_err(e)),
        }
        crate::network::release(self, &id)?;
        rootfs::remove(&self.images, &id, &self.containers.rootfs(&id))?;
        self.containers.remove(&id)?;
        match mounts {
            Ok((true, mounts)) => self.remove_anonymous_volumes(&mounts),
            _ => Ok(()),
        }
    }
}
