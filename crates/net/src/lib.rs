//! vessel's container networking.
//!
//! The pieces a container engine needs to give containers a network, each
//! in its own module: IPv4 subnets ([`subnet`]), a netlink client for links,
//! addresses and routes ([`netlink`], [`link`], [`address`]), persistent
//! network namespaces ([`netns`]), the store of networks and of the
//! endpoints that hold their addresses ([`store`], [`ipam`]), nftables rules
//! for outbound NAT and published ports ([`firewall`]), and the `-p` syntax
//! with host-port reservation ([`ports`]). Netlink is spoken directly; only
//! firewall rules go through the `nft` program (as podman and CNI do with
//! theirs). See docs/network.md.

pub mod address;
pub mod bridge;
pub mod endpoint;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod store;
pub mod subnet;
pub mod sysctl;

pub use error::{NetError, Result};
pub use ports::{PortSpec, Protocol};
pub use store::{Endpoint, Network, NetworkState, NetworkStore};
pub use subnet::Subnet;
