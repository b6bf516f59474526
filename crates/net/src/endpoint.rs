//! Plugging a container into a network: a veth pair whose host end is a
//! port of the network's bridge and whose other end (`eth0`, ...) is made
//! directly in the container's network namespace, with the endpoint's MAC
//! and address, up, and — on the first interface — the default route.

use std::os::fd::AsFd;
use std::path::Path;

use crate::address;
use crate::error::{NetError, Result};
use crate::ipam::mac_of;
use crate::link::{self, VethPair};
use crate::netlink::Netlink;
use crate::netns;
use crate::store::{Endpoint, Network};

/// Bring up the loopback interface in the namespace at `netns_path` (a new
/// namespace has `lo` down).
pub fn loopback_up(netns_path: &Path) -> Result<()> {
    let mut inner = netns::netlink_in(netns_path)?;
    let lo = link::by_name(&mut inner, "lo")?.ok_or_else(|| NetError::NetlinkReply {
        op: "look up link lo".into(),
        reason: "the namespace has no loopback interface".into(),
    })?;
    link::set_up(&mut inner, lo.index, "lo")
}

/// Connect the namespace at `netns_path` to `net` as `endpoint` says.
/// `bridge_index` is the bridge's ([`crate::bridge::ensure`]). On failure
/// the host end is deleted (and the pair with it).
pub fn connect(
    host: &mut Netlink,
    bridge_index: u32,
    netns_path: &Path,
    net: &Network,
    endpoint: &Endpoint,
) -> Result<()> {
    let done = plug(host, bridge_index, netns_path, net, endpoint);
    if done.is_err() {
        let _ = link::delete(host, &endpoint.veth);
    }
    done
}

fn plug(
    host: &mut Netlink,
    bridge_index: u32,
    netns_path: &Path,
    net: &Network,
    endpoint: &Endpoint,
) -> Result<()> {
    let ns = netns::open(netns_path)?;
    // A pair left by a crash between its creation and the record of its
    // endpoint's release would make the creation fail.
    link::delete(host, &endpoint.veth)?;
    link::create_veth(
        host,
        &VethPair {
            host: &endpoint.veth,
            peer: &endpoint.interface,
            peer_netns: ns.as_fd(),
            peer_mac: mac_of(endpoint.ip),
        },
    )?;
    let veth = link::by_name(host, &endpoint.veth)?.ok_or_else(|| NetError::NetlinkReply {
        op: format!("create veth {}", endpoint.veth),
        reason: "the link is missing after its creation".into(),
    })?;
    link::set_master(host, veth.index, &endpoint.veth, bridge_index)?;
    link::set_up(host, veth.index, &endpoint.veth)?;

    let mut inner = netns::netlink_in(netns_path)?;
    let eth =
        link::by_name(&mut inner, &endpoint.interface)?.ok_or_else(|| NetError::NetlinkReply {
            op: format!("create {} in the container", endpoint.interface),
            reason: "the link is missing after its creation".into(),
        })?;
    address::add(
        &mut inner,
        eth.index,
        &endpoint.interface,
        endpoint.ip,
        &net.subnet,
    )?;
    link::set_up(&mut inner, eth.index, &endpoint.interface)?;
    if endpoint.interface == "eth0" {
        address::add_default_route(&mut inner, net.gateway)?;
    }
    Ok(())
}

/// Disconnect an endpoint: delete its host end (the pair goes with it).
pub fn disconnect(host: &mut Netlink, endpoint: &Endpoint) -> Result<()> {
    link::delete(host, &endpoint.veth)
}
