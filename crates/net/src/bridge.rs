//! A network's Linux bridge: created on the network's first use (and again
//! after a reboot), with the gateway address, up; deleted with the network.

use crate::address;
use crate::error::Result;
use crate::link;
use crate::netlink::Netlink;
use crate::store::Network;
use crate::sysctl;

/// Make sure `net`'s bridge exists, has its gateway address and is up, and
/// that the kernel forwards and accepts localhost traffic for it. Call with
/// the network store's lock held.
pub fn ensure(nl: &mut Netlink, net: &Network) -> Result<u32> {
    let bridge = match link::by_name(nl, &net.bridge)? {
        Some(l) => l,
        None => {
            link::create_bridge(nl, &net.bridge)?;
            link::by_name(nl, &net.bridge)?.ok_or_else(|| crate::NetError::NetlinkReply {
                op: format!("create bridge {}", net.bridge),
                reason: "the bridge is missing after its creation".into(),
            })?
        }
    };
    address::add(nl, bridge.index, &net.bridge, net.gateway, &net.subnet)?;
    if !bridge.up {
        link::set_up(nl, bridge.index, &net.bridge)?;
    }
    sysctl::enable_route_localnet(&net.bridge)?;
    if !net.internal {
        sysctl::enable_forwarding()?;
    }
    Ok(bridge.index)
}

/// Delete `net`'s bridge (its ports go with it). Missing is not an error.
pub fn delete(nl: &mut Netlink, net: &Network) -> Result<()> {
    link::delete(nl, &net.bridge)
}
