//! Links over netlink: bridges, veth pairs (one end created directly in a
//! container's network namespace), bringing links up, attaching a port to
//! a bridge, lookups and deletion.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetError, Result};
use crate::netlink::Netlink;

/// The longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_NAME: usize = 15;

/// A link as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// The bridge it is a port of.
    pub master: Option<u32>,
    /// Hardware address.
    pub mac: Vec<u8>,
    /// Administratively up.
    pub up: bool,
}

fn from_message(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        master: None,
        mac: Vec::new(),
        up: m.header.flags.contains(LinkFlags::Up),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Controller(i) => link.master = Some(*i),
            LinkAttribute::Address(mac) => link.mac.clone_from(mac),
            _ => {}
        }
    }
    link
}

fn named(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m
}

/// Every link of the socket's namespace.
pub fn list(nl: &mut Netlink) -> Result<Vec<Link>> {
    let replies = nl.dump(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )?;
    Ok(replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(from_message(m)),
            _ => None,
        })
        .collect())
}

/// The link called `name`, if there is one.
pub fn by_name(nl: &mut Netlink, name: &str) -> Result<Option<Link>> {
    match nl.get(
        &format!("look up link {name}"),
        RouteNetlinkMessage::GetLink(named(name)),
    ) {
        Ok(RouteNetlinkMessage::NewLink(m)) => Ok(Some(from_message(&m))),
        Ok(_) => Ok(None),
        Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc_enodev()) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// Create a bridge called `name` (down, no address).
pub fn create_bridge(nl: &mut Netlink, name: &str) -> Result<()> {
    let mut m = named(name);
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    nl.request(
        &format!("create bridge {name}"),
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// The two ends of a veth pair: `host` stays in the socket's namespace,
/// `peer` is created in the namespace `peer_netns` (an open nsfs file) with
/// hardware address `peer_mac`.
#[derive(Debug)]
pub struct VethPair<'a> {
    /// Name of the host end.
    pub host: &'a str,
    /// Name of the other end, inside `peer_netns`.
    pub peer: &'a str,
    /// The other end's namespace.
    pub peer_netns: BorrowedFd<'a>,
    /// The other end's MAC address.
    pub peer_mac: [u8; 6],
}

/// Create a veth pair.
pub fn create_veth(nl: &mut Netlink, pair: &VethPair<'_>) -> Result<()> {
    let mut peer = named(pair.peer);
    peer.attributes
        .push(LinkAttribute::NetNsFd(pair.peer_netns.as_raw_fd()));
    peer.attributes
        .push(LinkAttribute::Address(pair.peer_mac.to_vec()));
    let mut m = named(pair.host);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    nl.request(
        &format!("create veth pair {} / {}", pair.host, pair.peer),
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Bring link `index` up.
pub fn set_up(nl: &mut Netlink, index: u32, name: &str) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    nl.request(
        &format!("bring link {name} up"),
        RouteNetlinkMessage::SetLink(m),
        0,
    )
}

/// Make link `index` a port of bridge `master`.
pub fn set_master(nl: &mut Netlink, index: u32, name: &str, master: u32) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Controller(master));
    nl.request(
        &format!("attach link {name} to its bridge"),
        RouteNetlinkMessage::SetLink(m),
        0,
    )
}

/// Delete the link called `name`; a link that does not exist is not an
/// error (deleting is how cleanup converges).
pub fn delete(nl: &mut Netlink, name: &str) -> Result<()> {
    match nl.request(
        &format!("delete link {name}"),
        RouteNetlinkMessage::DelLink(named(name)),
        0,
    ) {
        Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc_enodev()) => {
            Ok(())
        }
        other => other,
    }
}
