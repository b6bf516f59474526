//! The engine's entry points: what `vessel create/start/run/rm/ps/inspect`
//! call. Each is one function over the image store, the container store and
//! the runtime.

use std::path::PathBuf;

use vessel_image::manifest::Platform;
use vessel_image::{ImageStore, Reference};
use vessel_runtime::{Container, DeleteOptions, RuntimeError, StateStore};

use crate::error::{EngineError, Result};
pub use crate::monitor::Stdio;
use crate::names;
use crate::options::{self, CreateOptions};
use crate::record::{ContainerRecord, ContainerState, Status};
use crate::rootfs;
use crate::spec::{self, user::UserDb};
use crate::store::{self, ContainerStore};

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
        Ok(Engine {
            config,
            images,
            containers,
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
        let config = options::merge(image.config.config().as_ref(), opts, &id, &host)?;
        let top = self.images.unpack(&image).map_err(image_err)?;

        let mut record = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: vessel_runtime::state::now_rfc3339(),
            image: reference.to_string(),
            image_id: image.config_digest.to_string(),
            config,
            state: ContainerState::created(),
        };
        self.add_with_name(&mut record, opts.name.as_deref())?;
        let rootfs = self.containers.rootfs(&id);
        let made = rootfs::prepare(&self.images, &id, top.as_deref(), &rootfs).and_then(|()| {
            let user = UserDb::read(&rootfs)?.resolve(&record.config.user)?;
            rootfs::ensure_dir(&rootfs, &record.config.working_dir)?;
            let spec = spec::generate(&id, &record.config, &user)?;
            store::write_json(&self.containers.dir(&id).join("config.json"), &spec)
        });
        if let Err(e) = made {
            let _ = rootfs::remove(&self.images, &id, &rootfs);
            let _ = self.containers.remove(&id);
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

    /// `vessel start -a`: run a created or exited container in the
    /// foreground with `stdio`, until it exits; its exit code.
    pub fn start_foreground(&self, container: &str, stdio: Stdio) -> Result<i32> {
        let id = self.containers.resolve(container)?;
        let record = self.containers.load(&id)?;
        if record.state.status == Status::Running {
            return Err(EngineError::WrongState {
                id,
                status: record.state.status.to_string(),
                operation: "start (it is already running)",
            });
        }
        rootfs::ensure_mounted(&self.images, &id, &self.containers.rootfs(&id))?;
        crate::monitor::run_foreground(&self.containers, &self.runtime_root(), &id, stdio)
    }

    /// `vessel run` (foreground): create, start and wait; with `remove`
    /// (`--rm`) the container is removed afterwards, whatever happened.
    /// Returns the container's id and exit code.
    pub fn run(&self, opts: &CreateOptions, stdio: Stdio, remove: bool) -> Result<(String, i32)> {
        let record = self.create(opts)?;
        let result = self.start_foreground(&record.id, stdio);
        if remove {
            let removed = self.remove(&record.id, true);
            let code = result?;
            removed?;
            return Ok((record.id, code));
        }
        Ok((record.id, result?))
    }

    /// `vessel inspect`: the container's record.
    pub fn inspect(&self, container: &str) -> Result<ContainerRecord> {
        self.containers.load(&self.containers.resolve(container)?)
    }

    /// `vessel ps -a`: every container, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        self.containers.list()
    }

    /// `vessel rm [-f]`: remove the container, its rootfs mount, writable
    /// layer, runtime state, cgroup, metadata and name. A running container
    /// needs `force` (it is killed).
    pub fn remove(&self, container: &str, force: bool) -> Result<()> {
        let id = self.containers.resolve(container)?;
        let record = self.containers.load(&id)?;
        if record.state.status == Status::Running && !force {
            return Err(EngineError::WrongState {
                id,
                status: record.state.status.to_string(),
                operation: "remove (stop it first, or force the removal)",
            });
        }
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
        rootfs::remove(&self.images, &id, &self.containers.rootfs(&id))?;
        self.containers.remove(&id)
    }
}
