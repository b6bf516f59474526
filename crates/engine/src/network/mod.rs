//! Containers on networks: what `--network`, `-p`/`-P` and `vessel network`
//! do with the pieces of `vessel-net`.
//!
//! - At create ([`plan`], [`check`], [`add_to_spec`]): the network options
//!   become the container's config; its spec joins a persistent network
//!   namespace by path (`<run_root>/netns/<id>`), and bind-mounts the
//!   `hosts`, `hostname` and `resolv.conf` files of its directory.
//! - At each start, in the monitor ([`attach`]): the namespace, its
//!   loopback, an endpoint on each network (address from the IPAM, veth,
//!   default route), the host ports reserved and DNATed.
//! - When the container stops, in the monitor, and in `rm` and the
//!   reconciliation ([`release`]): all of it goes again.
//! - [`Engine::reconcile_networks`] frees what containers whose monitor died
//!   left behind. See docs/network.md.

mod attach;
mod commands;
mod files;
mod reconcile;

use std::path::PathBuf;

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Mount, Spec};
use vessel_net::{NetError, NetworkStore, PortSpec};

pub use attach::{attach, release, Attached};
pub use commands::NetworkCreate;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::options::CreateOptions;
use crate::record::{ContainerConfig, ContainerRecord, NetworkMode};

/// The network store of the host (`$VESSEL_NETWORK_STORE`, default
/// `/var/lib/vessel/networks`): networks are host objects, shared by every
/// vessel root.
pub fn store_dir() -> PathBuf {
    std::env::var_os("VESSEL_NETWORK_STORE")
        .map_or_else(|| PathBuf::from("/var/lib/vessel/networks"), PathBuf::from)
}

pub(crate) fn net_err(what: impl Into<String>) -> impl FnOnce(NetError) -> EngineError {
    let what = what.into();
    move |source| EngineError::Network { what, source }
}

impl Engine {
    /// The host's network store.
    pub fn network_store(&self) -> NetworkStore {
        NetworkStore::open(store_dir())
    }

    /// Where container `id`'s network namespace is mounted while it runs.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.config().run_root.join("netns").join(id)
    }

    /// The endpoints (address, MAC, ports) of container `id`, first
    /// network first.
    pub fn endpoints(&self, id: &str) -> Result<Vec<vessel_net::Endpoint>> {
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        Ok(state.endpoints_of(id).cloned().collect())
    }
}

/// The network part of a container's config, from the options and the
/// image (`-P` publishes its `ExposedPorts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkPlan {
    /// Networks (bridge mode).
    pub networks: Vec<String>,
    /// The container of `container:X` as given (resolved by [`check`]).
    pub container: Option<String>,
    /// Ports to publish.
    pub ports: Vec<PortSpec>,
}

fn invalid(option: &'static str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

/// Parse and check the network options (no store needed).
pub fn plan(image: Option<&ImageConfig>, opts: &CreateOptions) -> Result<NetworkPlan> {
    let mut ports = Vec::new();
    for p in &opts.publish {
        let spec: PortSpec = p
            .parse()
            .map_err(|e: NetError| invalid("-p", e.to_string()))?;
        ports.push(spec);
    }
    if opts.publish_all {
        let exposed = image
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        for e in exposed {
            let spec = vessel_net::ports::from_exposed(&e)
                .map_err(|err| invalid("-P", format!("the image's EXPOSE: {err}")))?;
            if !ports.iter().any(|p: &PortSpec| {
                p.container_port == spec.container_port && p.protocol == spec.protocol
            }) {
                ports.push(spec);
            }
        }
    }
    let mut networks = Vec::new();
    match opts.network {
        NetworkMode::Bridge => {
            networks = if opts.networks.is_empty() {
                vec![vessel_net::store::DEFAULT_NETWORK.to_owned()]
            } else {
                opts.networks.clone()
            };
        }
        _ if !ports.is_empty() => {
            return Err(invalid(
                "-p",
                "ports can only be published on a bridge network (not with --network none, host or container:)",
            ))
        }
        _ => {}
    }
    if opts.network == NetworkMode::Container && opts.network_container.is_none() {
        return Err(invalid(
            "--network",
            "container: needs a container name or id",
        ));
    }
    Ok(NetworkPlan {
        networks,
        container: opts.network_container.clone(),
        ports,
    })
}

/// Check what [`plan`] could not: the networks exist, the container of
/// `container:X` exists and has a namespace of its own to share (its id
/// replaces the name).
pub fn check(engine: &Engine, mut config: ContainerConfig) -> Result<ContainerConfig> {
    if !config.networks.is_empty() {
        let state = engine.network_store().read().map_err(net_err("Networks"))?;
        for n in &mut config.networks {
            *n = state.resolve(n).map_err(net_err("--network"))?.name;
        }
        let mut seen = config.networks.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != config.networks.len() {
            return Err(invalid("--network", "a network is named twice"));
        }
    }
    if let Some(other) = &config.network_container {
        let id = engine.containers().resolve(other)?;
        let target = engine.containers().load(&id)?;
        if matches!(
            target.config.network,
            NetworkMode::Host | NetworkMode::Container
        ) {
            return Err(invalid(
                "--network",
                format!(
                    "container {other} has no network namespace of its own to share (it uses --network {})",
                    mode_name(&target.config)
                ),
            ));
        }
        config.network_container = Some(id);
    }
    Ok(config)
}

/// Docker's name of a container's network mode (`inspect`'s NetworkMode).
pub fn mode_name(config: &ContainerConfig) -> String {
    match config.network {
        NetworkMode::None => "none".into(),
        NetworkMode::Host => "host".into(),
        NetworkMode::Bridge => config
            .networks
            .first()
            .cloned()
            .unwrap_or_else(|| "bridge".into()),
        NetworkMode::Container => format!(
            "container:{}",
            config.network_container.as_deref().unwrap_or("")
        ),
    }
}

/// Join the container's spec to its network namespace by path and mount
/// its `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` (written now,
/// rewritten with its address at each start).
pub fn add_to_spec(engine: &Engine, record: &ContainerRecord, spec: &mut Spec) -> Result<()> {
    let cfg = &record.config;
    let netns = match cfg.network {
        NetworkMode::Host => None,
        NetworkMode::None | NetworkMode::Bridge => Some(engine.netns_path(&record.id)),
        NetworkMode::Container => cfg
            .network_container
            .as_deref()
            .map(|other| engine.netns_path(other)),
    };
    let files_of = match (&cfg.network, &cfg.network_container) {
        (NetworkMode::Container, Some(other)) => other.clone(),
        _ => record.id.clone(),
    };
    if files_of == record.id {
        files::write_initial(engine, record)?;
    }
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut namespaces: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.typ() != LinuxNamespaceType::Network)
        .collect();
    if let Some(path) = netns {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(LinuxNamespaceType::Network);
        ns.set_path(Some(path));
        namespaces.push(ns);
    }
    linux.set_namespaces(Some(namespaces));

    let dir = engine.containers().dir(&files_of);
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (file, destination) in files::MOUNTED {
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(destination));
        m.set_typ(Some("bind".into()));
        m.set_source(Some(dir.join(file)));
        m.set_options(Some(vec!["rbind".into(), "rprivate".into()]));
        mounts.push(m);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

#[cfg(test)]
mod tests;
