//! `vessel network create|ls|inspect|rm|connect|disconnect|prune`.

use vessel_net::ipam::{self, HostRoute, NetworkRequest};
use vessel_net::netlink::Netlink;
use vessel_net::subnet::parse_ipv4;
use vessel_net::{address, bridge, firewall, link, Endpoint, NetError, Network};

use super::attach::{connect_running, release_endpoints};
use super::net_err;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::NetworkMode;

/// `vessel network create`'s options, as given.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    /// The name.
    pub name: String,
    /// `--subnet CIDR`.
    pub subnet: Option<String>,
    /// `--gateway IP`.
    pub gateway: Option<String>,
    /// `--internal`.
    pub internal: bool,
}

/// The host's routes, except those of vessel's own bridges (a network's
/// subnet is checked against the other networks by name).
fn host_routes(nl: &mut Netlink, networks: &[Network]) -> vessel_net::Result<Vec<HostRoute>> {
    let links = link::list(nl)?;
    let ours: Vec<u32> = links
        .iter()
        .filter(|l| networks.iter().any(|n| n.bridge == l.name))
        .map(|l| l.index)
        .collect();
    Ok(address::routes(nl)?
        .into_iter()
        .filter(|r| !r.oif.is_some_and(|i| ours.contains(&i)))
        .map(|r| {
            let dev = r
                .oif
                .and_then(|i| links.iter().find(|l| l.index == i))
                .map_or_else(String::new, |l| format!(" on {}", l.name));
            HostRoute {
                destination: r.destination,
                prefix: r.prefix,
                description: format!("the host's route {}/{}{dev}", r.destination, r.prefix),
            }
        })
        .collect())
}

impl Engine {
    /// `vessel network create`: the network, its bridge and its rules, or
    /// (on any error) none of them.
    pub fn network_create(&self, req: &NetworkCreate) -> Result<Network> {
        let what = format!("Network {}", req.name);
        let request = NetworkRequest {
            name: req.name.clone(),
            subnet: req
                .subnet
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(net_err(what.clone()))?,
            gateway: req
                .gateway
                .as_deref()
                .map(|g| parse_ipv4("gateway", g))
                .transpose()
                .map_err(net_err(what.clone()))?,
            internal: req.internal,
        };
        if request.gateway.is_some() && request.subnet.is_none() {
            return Err(EngineError::InvalidOption {
                option: "--gateway",
                reason: "needs --subnet".into(),
            });
        }
        let created = vessel_runtime::state::now_rfc3339();
        self.network_store()
            .update(|state| {
                let mut nl = Netlink::open()?;
                let routes = host_routes(&mut nl, &state.all_networks())?;
                let net = ipam::create_network(state, &request, &routes, &created)?;
                let made =
                    bridge::ensure(&mut nl, &net).and_then(|_| firewall::ensure_network(&net));
                if let Err(e) = made {
                    let _ = bridge::delete(&mut nl, &net);
                    let _ = firewall::remove_owned(&firewall::network_owner(&net.name));
                    return Err(e);
                }
                Ok(net)
            })
            .map_err(net_err(what))
    }

    /// `vessel network ls`: every network (the predefined one first).
    pub fn networks(&self) -> Result<Vec<Network>> {
        self.reconcile_networks()?;
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        let mut all = state.all_networks();
        all.sort_by_key(|n| (n.name != vessel_net::store::DEFAULT_NETWORK, n.name.clone()));
        Ok(all)
    }

    /// `vessel network inspect`: the network and its endpoints.
    pub fn network_inspect(&self, name: &str) -> Result<(Network, Vec<Endpoint>)> {
        self.reconcile_networks()?;
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        let net = state.resolve(name).map_err(net_err("Network"))?;
        let endpoints = state.endpoints_on(&net.name).cloned().collect();
        Ok((net, endpoints))
    }

    /// `vessel network rm`: refused while a container is connected.
    pub fn network_remove(&self, name: &str) -> Result<String> {
        self.reconcile_networks()?;
        self.network_store()
            .update(|state| {
                let net = state.resolve(name)?;
                if net.name == vessel_net::store::DEFAULT_NETWORK {
                    return Err(NetError::Predefined(net.name));
                }
                let users: Vec<&str> = state
                    .endpoints_on(&net.name)
                    .map(|e| e.container_name.as_str())
                    .collect();
                if !users.is_empty() {
                    return Err(NetError::InUse {
                        name: net.name.clone(),
                        containers: users.join(", "),
                    });
                }
                let mut nl = Netlink::open()?;
                bridge::delete(&mut nl, &net)?;
                firewall::remove_owned(&firewall::network_owner(&net.name))?;
                state.networks.remove(&net.name);
                Ok(net.name)
            })
            .map_err(net_err(format!("Network {name}")))
    }

    /// `vessel network prune`: remove the user-defined networks no
    /// container is connected to; their names.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        let mut removed = Vec::new();
        for net in state.networks.values() {
            if net.name != vessel_net::store::DEFAULT_NETWORK
                && state.endpoints_on(&net.name).next().is_none()
            {
                removed.push(self.network_remove(&net.name)?);
            }
        }
        Ok(removed)
    }

    /// `vessel network connect NETWORK CONTAINER`: a bridge-mode container
    /// gets the network in its config, and at once when it runs.
    pub fn network_connect(&self, network: &str, container: &str) -> Result<()> {
        let id = self.containers().resolve(container)?;
        let record = self.reconcile(self.containers().load(&id)?)?;
        if record.config.network != NetworkMode::Bridge {
            return Err(EngineError::WrongState {
                id,
                status: format!("on --network {}", super::mode_name(&record.config)),
                operation: "connect it to a network (only bridge-mode containers can be)",
            });
        }
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        let net = state.resolve(network).map_err(net_err("Network"))?;
        if record.config.networks.contains(&net.name) {
            return Err(net_err("Network")(NetError::Endpoint {
                container: record.name,
                reason: "is already connected to",
                network: net.name,
            }));
        }
        if record.state.status.is_active() {
            connect_running(self, &record, &net.name)?;
        }
        self.containers()
            .update(&id, |r| {
                r.config.networks.push(net.name.clone());
                Ok(())
            })
            .map(drop)
    }

    /// `vessel network disconnect NETWORK CONTAINER`.
    pub fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let id = self.containers().resolve(container)?;
        let record = self.containers().load(&id)?;
        let state = self.network_store().read().map_err(net_err("Networks"))?;
        let net = state.resolve(network).map_err(net_err("Network"))?;
        if !record.config.networks.contains(&net.name) {
            return Err(net_err("Network")(NetError::Endpoint {
                container: record.name,
                reason: "is not connected to",
                network: net.name,
            }));
        }
        release_endpoints(&self.network_store(), &id, Some(&net.name))?;
        self.containers()
            .update(&id, |r| {
                r.config.networks.retain(|n| n != &net.name);
                Ok(())
            })
            .map(drop)
    }
}
