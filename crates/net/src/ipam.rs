//! Address management over the [`NetworkState`]: which subnet a new
//! network gets, which address a container gets. Called inside
//! [`crate::NetworkStore::update`], so each decision is made under the
//! store's lock with every earlier one on disk.

use std::net::Ipv4Addr;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{NetError, Result};
use crate::store::{id_of, Endpoint, Network, NetworkState, DEFAULT_NETWORK};
use crate::subnet::{overlaps_raw, Subnet};

/// Where user-defined networks get their /24 when `--subnet` is not given
/// (podman takes 10.89.0.0/16 for its own, so vessel stays off it).
pub const POOL: &str = "10.90.0.0/16";

/// Names that are network modes, not networks.
const RESERVED: &[&str] = &["host", "none", "default", "container"];

/// A route of the host that a new subnet must not overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    /// Destination.
    pub destination: Ipv4Addr,
    /// Prefix length (routes with 0, the default route, are ignored).
    pub prefix: u8,
    /// How to name it in an error (`the route 192.0.2.0/24 on eth0`).
    pub description: String,
}

/// `vessel network create`'s request.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    /// The name.
    pub name: String,
    /// `--subnet`; from [`POOL`] when absent.
    pub subnet: Option<Subnet>,
    /// `--gateway`; the subnet's first address when absent.
    pub gateway: Option<Ipv4Addr>,
    /// `--internal`.
    pub internal: bool,
}

/// Docker's rule for network names.
pub fn validate_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidName(name.to_owned()))
    }
}

/// Add a network to `state` as `request` asks. Nothing is added when it
/// fails: a taken or bad name, a subnet that overlaps another network or a
/// route of the host, a gateway outside the subnet.
pub fn create_network(
    state: &mut NetworkState,
    request: &NetworkRequest,
    host_routes: &[HostRoute],
    created: &str,
) -> Result<Network> {
    let name = &request.name;
    validate_name(name)?;
    if name == DEFAULT_NETWORK || state.networks.contains_key(name) {
        return Err(NetError::Exists(name.clone()));
    }
    if RESERVED.contains(&name.as_str()) {
        return Err(NetError::InvalidAddress {
            what: "network name",
            value: name.clone(),
            reason: "it is a network mode, not a network".into(),
        });
    }
    let existing = state.all_networks();
    let conflict = |s: &Subnet| -> Option<String> {
        if let Some(n) = existing.iter().find(|n| n.subnet.overlaps(s)) {
            return Some(format!("network {} ({})", n.name, n.subnet));
        }
        host_routes
            .iter()
            .filter(|r| r.prefix > 0)
            .find(|r| overlaps_raw(r.destination, r.prefix, s.network(), s.prefix()))
            .map(|r| r.description.clone())
    };
    let subnet = match request.subnet {
        Some(s) => {
            if let Some(other) = conflict(&s) {
                return Err(NetError::Overlap {
                    subnet: s.to_string(),
                    other,
                });
            }
            s
        }
        None => {
            let pool: Subnet = POOL.parse().expect("a valid constant");
            (0..256)
                .filter_map(|n| pool.nth_subnet(24, n))
                .find(|s| conflict(s).is_none())
                .ok_or_else(|| NetError::PoolExhausted(POOL.to_owned()))?
        }
    };
    let gateway = match request.gateway {
        Some(g) if subnet.is_host(g) => g,
        Some(g) => {
            return Err(NetError::InvalidAddress {
                what: "gateway",
                value: g.to_string(),
                reason: format!("not a host address of the subnet {subnet}"),
            })
        }
        None => subnet.first_host(),
    };
    let id = id_of(name, &subnet);
    let network = Network {
        name: name.clone(),
        bridge: format!("vsbr{}", &id[..8]),
        id,
        driver: "bridge".to_owned(),
        subnet,
        gateway,
        internal: request.internal,
        created: created.to_owned(),
    };
    state.networks.insert(name.clone(), network.clone());
    Ok(network)
}

/// The host end of container `container`'s veth pair on `network`:
/// `vs` and 12 hex digits of a digest of both, so that the name is the
/// same every time it is computed (15 characters at most, IFNAMSIZ).
pub fn veth_name(container: &str, network: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{container}/{network}")));
    format!("vs{}", &digest[..12])
}

/// Docker's MAC address for a container address: `02:42:` and its bytes.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:0a:57:00:02`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The container an endpoint is made for.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its directory in its store.
    pub dir: &'a Path,
}

/// Give container `owner` an address on `network`, on its interface
/// `interface`: the lowest one that is neither the gateway nor another
/// endpoint's.
pub fn allocate(
    state: &mut NetworkState,
    network: &Network,
    owner: Owner<'_>,
    interface: &str,
) -> Result<Endpoint> {
    let (container, name) = (owner.id, owner.name);
    if state
        .endpoints_of(container)
        .any(|e| e.network == network.name)
    {
        return Err(NetError::Endpoint {
            container: name.to_owned(),
            reason: "is already connected to",
            network: network.name.clone(),
        });
    }
    let used: Vec<Ipv4Addr> = state.endpoints_on(&network.name).map(|e| e.ip).collect();
    let ip = network
        .subnet
        .hosts()
        .find(|ip| *ip != network.gateway && !used.contains(ip))
        .ok_or_else(|| NetError::AddressesExhausted {
            network: network.name.clone(),
            subnet: network.subnet.to_string(),
        })?;
    let endpoint = Endpoint {
        container: container.to_owned(),
        container_name: name.to_owned(),
        container_dir: owner.dir.to_owned(),
        network: network.name.clone(),
        ip,
        mac: format_mac(&mac_of(ip)),
        veth: veth_name(container, &network.name),
        interface: interface.to_owned(),
        ports: Vec::new(),
    };
    if !state.networks.contains_key(&network.name) {
        state.networks.insert(network.name.clone(), network.clone());
    }
    state.endpoints.push(endpoint.clone());
    Ok(endpoint)
}

/// Remove container `container`'s endpoints (on `network`, or all of
/// them); the removed ones.
pub fn release(state: &mut NetworkState, container: &str, network: Option<&str>) -> Vec<Endpoint> {
    let (gone, kept) = std::mem::take(&mut state.endpoints)
        .into_iter()
        .partition(|e| e.container == container && network.is_none_or(|n| e.network == n));
    state.endpoints = kept;
    gone
}

/// The first interface name (`eth0`, `eth1`, ...) container `container`
/// does not use yet.
pub fn next_interface(state: &NetworkState, container: &str) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !state.endpoints_of(container).any(|e| &e.interface == n))
        .expect("an unbounded range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, subnet: Option<&str>) -> NetworkRequest {
        NetworkRequest {
            name: name.into(),
            subnet: subnet.map(|s| s.parse().unwrap()),
            ..Default::default()
        }
    }

    fn route(s: &str) -> HostRoute {
        let subnet: Subnet = s.parse().unwrap();
        HostRoute {
            destination: subnet.network(),
            prefix: subnet.prefix(),
            description: format!("the route {s} on eth0"),
        }
    }

    fn owner(id: &str) -> Owner<'_> {
        Owner {
            id,
            name: "n",
            dir: Path::new("/x"),
        }
    }

    #[test]
    fn networks_get_pool_subnets_that_overlap_nothing() {
        let mut s = NetworkState::default();
        let routes = [
            route("10.90.0.0/24"),
            HostRoute {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                description: "default".into(),
            },
        ];
        let a = create_network(&mut s, &request("a", None), &routes, "t").unwrap();
        assert_eq!(a.subnet.to_string(), "10.90.1.0/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 90, 1, 1));
        assert!(a.bridge.len() <= crate::link::MAX_NAME && a.bridge.starts_with("vsbr"));
        let b = create_network(&mut s, &request("b", None), &routes, "t").unwrap();
        assert_eq!(b.subnet.to_string(), "10.90.2.0/24");
    }

    #[test]
    fn bad_requests_change_nothing() {
        let mut s = NetworkState::default();
        create_network(&mut s, &request("a", Some("10.91.0.0/24")), &[], "t").unwrap();
        let before = s.clone();
        let cases = [
            (request("a", None), "already exists"),
            (request("bridge", None), "already exists"),
            (request("host", None), "network mode"),
            (request("-x", None), "invalid network name"),
            (request("a b", None), "invalid network name"),
            (request(&"n".repeat(65), None), "invalid network name"),
            (
                request("c", Some("10.91.0.128/25")),
                "network a (10.91.0.0/24)",
            ),
            (request("c", Some("10.0.0.0/8")), "overlaps network"),
            (
                request("c", Some("10.87.5.0/24")),
                "network bridge (10.87.0.0/16)",
            ),
            (
                request("c", Some("192.0.2.0/28")),
                "the route 192.0.2.0/24 on eth0",
            ),
            (
                NetworkRequest {
                    gateway: Some(Ipv4Addr::new(10, 92, 1, 1)),
                    ..request("c", Some("10.92.0.0/24"))
                },
                "not a host address",
            ),
            (
                NetworkRequest {
                    gateway: Some(Ipv4Addr::new(10, 92, 0, 255)),
                    ..request("c", Some("10.92.0.0/24"))
                },
                "not a host address",
            ),
        ];
        for (req, reason) in cases {
            let e = create_network(&mut s, &req, &[route("192.0.2.0/24")], "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(reason), "{}: {e}", req.name);
            assert_eq!(s, before);
        }
    }

    #[test]
    fn addresses_are_never_handed_out_twice() {
        let mut s = NetworkState::default();
        let net =
            create_network(&mut s, &request("small", Some("10.93.0.0/29")), &[], "t").unwrap();
        let mut ips = Vec::new();
        for i in 0..5 {
            let e = allocate(&mut s, &net, owner(&format!("c{i}")), "eth0").unwrap();
            assert_ne!(e.ip, net.gateway);
            assert!(!ips.contains(&e.ip));
            ips.push(e.ip);
        }
        let e = allocate(&mut s, &net, owner("c9"), "eth0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no free address") && e.contains("10.93.0.0/29"),
            "{e}"
        );
        let again = allocate(&mut s, &net, owner("c0"), "eth0")
            .unwrap_err()
            .to_string();
        assert!(again.contains("already connected"), "{again}");
        let freed = release(&mut s, "c2", None);
        assert_eq!(freed.len(), 1);
        assert_eq!(
            allocate(&mut s, &net, owner("c7"), "eth0").unwrap().ip,
            freed[0].ip
        );
    }

    #[test]
    fn names_of_links_and_addresses() {
        let v = veth_name(&"a".repeat(64), "bridge");
        assert_eq!(v, veth_name(&"a".repeat(64), "bridge"));
        assert_ne!(v, veth_name(&"a".repeat(64), "other"));
        assert_eq!(v.len(), 14);
        assert_eq!(
            format_mac(&mac_of(Ipv4Addr::new(10, 87, 0, 2))),
            "02:42:0a:57:00:02"
        );
        let mut s = NetworkState::default();
        let net = Network::predefined();
        assert_eq!(next_interface(&s, "c"), "eth0");
        allocate(&mut s, &net, owner("c"), "eth0").unwrap();
        assert_eq!(next_interface(&s, "c"), "eth1");
    }
}
