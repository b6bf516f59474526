//! IPv4 addresses and routes over netlink.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::Netlink;
use crate::subnet::Subnet;

/// Give link `index` (called `name`) the address `ip` in `subnet`. An
/// address it already has is replaced, not an error.
pub fn add(nl: &mut Netlink, index: u32, name: &str, ip: Ipv4Addr, subnet: &Subnet) -> Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = subnet.prefix();
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    m.attributes
        .push(AddressAttribute::Broadcast(subnet.broadcast()));
    nl.request(
        &format!("add address {ip}/{} to {name}", subnet.prefix()),
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// Add the default route through `gateway` (in the socket's namespace).
pub fn add_default_route(nl: &mut Netlink, gateway: Ipv4Addr) -> Result<()> {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    nl.request(
        &format!("add the default route via {gateway}"),
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// An IPv4 route of the main table, as the overlap check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub destination: Ipv4Addr,
    /// Its prefix length (0 for the default route).
    pub prefix: u8,
    /// Output interface index.
    pub oif: Option<u32>,
}

/// The IPv4 routes of the main table.
pub fn routes(nl: &mut Netlink) -> Result<Vec<Route>> {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    let replies = nl.dump("list routes", RouteNetlinkMessage::GetRoute(m))?;
    let mut out = Vec::new();
    for r in replies {
        let RouteNetlinkMessage::NewRoute(m) = r else {
            continue;
        };
        if m.header.table != RouteHeader::RT_TABLE_MAIN || m.header.kind != RouteType::Unicast {
            continue;
        }
        let mut route = Route {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix: m.header.destination_prefix_length,
            oif: None,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => route.destination = *d,
                RouteAttribute::Oif(i) => route.oif = Some(*i),
                _ => {}
            }
        }
        out.push(route);
    }
    Ok(out)
}
