//! A container's network while it runs: made by its monitor at each start
//! ([`attach`]), taken down when it stops and by `rm` and the
//! reconciliation ([`release`]).
//!
//! Order matters for crash safety: an endpoint is recorded in the network
//! store (under its lock) before its veth and port rules exist, and those
//! are deleted before the record goes. So every leftover of a killed
//! process is named by a record whose owner is dead, and [`release`] of
//! that owner removes it.

use std::path::Path;

use vessel_net::ipam::{self, Owner};
use vessel_net::netlink::Netlink;
use vessel_net::ports::{self, PublishedPort, Reservation};
use vessel_net::{bridge, endpoint, firewall, netns, Endpoint, Network, NetworkStore};

use super::{files, net_err};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::{ContainerRecord, NetworkMode};

/// What a running container's network holds in its monitor: the host
/// ports, reserved until it is dropped.
#[derive(Debug, Default)]
pub struct Attached {
    _reservations: Vec<Reservation>,
}

/// Set up container `id`'s network before its process is created. On
/// failure nothing is left (a port in use, say, is a clear error).
pub fn attach(engine: &Engine, id: &str) -> Result<Attached> {
    let record = engine.containers().load(id)?;
    match record.config.network {
        NetworkMode::Host => return Ok(Attached::default()),
        NetworkMode::Container => {
            let other = record.config.network_container.clone().unwrap_or_default();
            if !netns::exists(&engine.netns_path(&other)) {
                return Err(EngineError::WrongState {
                    id: other,
                    status: "not running".into(),
                    operation: "share its network namespace (start it first)",
                });
            }
            return Ok(Attached::default());
        }
        NetworkMode::None | NetworkMode::Bridge => {}
    }
    // The monitor's report names the container already.
    let what = "network".to_owned();
    let path = engine.netns_path(id);
    netns::create(&path)
        .and_then(|()| endpoint::loopback_up(&path))
        .map_err(net_err(what.clone()))
        .inspect_err(|_| {
            let _ = netns::remove(&path);
        })?;
    if record.config.network == NetworkMode::None {
        return Ok(Attached::default());
    }
    connect_all(engine, &record, &path).inspect_err(|_| {
        let _ = release(engine, id);
    })
}

fn connect_all(engine: &Engine, record: &ContainerRecord, path: &Path) -> Result<Attached> {
    let id = &record.id;
    let what = "network".to_owned();
    let reservations = record
        .config
        .ports
        .iter()
        .map(ports::reserve)
        .collect::<vessel_net::Result<Vec<_>>>()
        .map_err(net_err(what.clone()))?;
    let published: Vec<PublishedPort> = reservations.iter().map(|r| r.port).collect();
    let dir = engine.containers().dir(id);
    let owner = Owner {
        id,
        name: &record.name,
        dir: &dir,
    };
    let store = engine.network_store();
    let plugged = store
        .update(|state| {
            let mut host = Netlink::open()?;
            let mut out = Vec::new();
            for (i, name) in record.config.networks.iter().enumerate() {
                let net = state.network(name)?;
                let bridge_index = bridge::ensure(&mut host, &net)?;
                firewall::ensure_network(&net)?;
                let interface = ipam::next_interface(state, id);
                let mut ep = ipam::allocate(state, &net, owner, &interface)?;
                if i == 0 {
                    ep.ports.clone_from(&published);
                    if let Some(last) = state.endpoints.last_mut() {
                        last.ports.clone_from(&published);
                    }
                }
                out.push((net, bridge_index, ep));
            }
            let _ = files::refresh_around(state, id, &dir, &record.config.networks);
            Ok(out)
        })
        .map_err(net_err(what.clone()))?;
    plug(&plugged, id, path).map_err(net_err(what))?;
    Ok(Attached {
        _reservations: reservations,
    })
}

fn plug(plugged: &[(Network, u32, Endpoint)], id: &str, path: &Path) -> vessel_net::Result<()> {
    let mut host = Netlink::open()?;
    for (net, bridge_index, ep) in plugged {
        endpoint::connect(&mut host, *bridge_index, path, net, ep)?;
        firewall::add_ports(id, ep.ip, &ep.ports)?;
    }
    Ok(())
}

/// Take container `id`'s network down: its endpoints (veths, port rules,
/// addresses) on `network` or on all of them, then, for all, its
/// namespace. Converges: what is already gone is skipped.
pub fn release(engine: &Engine, id: &str) -> Result<()> {
    release_endpoints(&engine.network_store(), id, None)?;
    netns::remove(&engine.netns_path(id)).map_err(net_err(format!("Container {id}: network")))
}

/// Remove container `id`'s endpoints (on `network`, or all) from the
/// store and the system; refresh the hosts files around it.
pub(super) fn release_endpoints(
    store: &NetworkStore,
    id: &str,
    network: Option<&str>,
) -> Result<()> {
    let what = format!("Container {id}: network");
    let state = store.read().map_err(net_err(what.clone()))?;
    if !state
        .endpoints_of(id)
        .any(|e| network.is_none_or(|n| e.network == n))
    {
        return Ok(());
    }
    store
        .update(|state| {
            let gone = ipam::release(state, id, network);
            let mut host = Netlink::open()?;
            for ep in &gone {
                endpoint::disconnect(&mut host, ep)?;
            }
            if gone.iter().any(|e| !e.ports.is_empty()) {
                firewall::remove_owned(&firewall::container_owner(id))?;
                for ep in &gone {
                    firewall::forget_udp_flows(&ep.ports);
                }
            }
            let networks: Vec<String> = gone.iter().map(|e| e.network.clone()).collect();
            if let Some(ep) = gone.first() {
                let _ = files::refresh_around(state, id, &ep.container_dir, &networks);
            }
            Ok(())
        })
        .map_err(net_err(what))
}

/// Connect running container `record` to one more network (`vessel
/// network connect`), as the next `ethN`.
pub(super) fn connect_running(
    engine: &Engine,
    record: &ContainerRecord,
    network: &str,
) -> Result<()> {
    let id = &record.id;
    let what = format!("Container {id}: network {network}");
    let dir = engine.containers().dir(id);
    let owner = Owner {
        id,
        name: &record.name,
        dir: &dir,
    };
    let plugged = engine
        .network_store()
        .update(|state| {
            let net = state.network(network)?;
            let mut host = Netlink::open()?;
            let bridge_index = bridge::ensure(&mut host, &net)?;
            firewall::ensure_network(&net)?;
            let interface = ipam::next_interface(state, id);
            let ep = ipam::allocate(state, &net, owner, &interface)?;
            let _ = files::refresh_around(state, id, &dir, &[network.to_owned()]);
            Ok(vec![(net, bridge_index, ep)])
        })
        .map_err(net_err(what.clone()))?;
    plug(&plugged, id, &engine.netns_path(id))
        .map_err(net_err(what))
        .inspect_err(|_| {
            let _ = release_endpoints(&engine.network_store(), id, Some(network));
        })
}
