//! IPv4 subnets in CIDR notation (`10.89.3.0/24`): parsing with clear
//! errors, overlap checks, and the host addresses a network hands out.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{NetError, Result};

/// The shortest prefix vessel accepts: a /7 or wider would swallow a large
/// part of the address space (and every route of the host).
pub const MIN_PREFIX: u8 = 8;
/// The longest: a /30 has two host addresses, the gateway and one container.
pub const MAX_PREFIX: u8 = 30;

/// An IPv4 subnet: a network address whose host bits are zero, and a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

fn invalid(value: &str, reason: impl Into<String>) -> NetError {
    NetError::InvalidAddress {
        what: "subnet",
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl Subnet {
    /// A subnet from its parts; the host bits of `network` must be zero.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        let text = format!("{network}/{prefix}");
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
            return Err(invalid(
                &text,
                format!("the prefix length must be between {MIN_PREFIX} and {MAX_PREFIX}"),
            ));
        }
        let s = Subnet { network, prefix };
        if u32::from(network) & !s.mask() != 0 {
            return Err(invalid(
                &text,
                format!(
                    "host bits are set (the network address is {})",
                    Ipv4Addr::from(u32::from(network) & s.mask())
                ),
            ));
        }
        Ok(s)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether `ip` is an address a host may have (not the network or
    /// broadcast address).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast()
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        overlaps_raw(self.network, self.prefix, other.network, other.prefix)
    }

    /// The first host address (the default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Every host address, in order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 1;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }

    /// The `n`th /`prefix` subnet inside this one (the pool's candidates).
    pub fn nth_subnet(&self, prefix: u8, n: u32) -> Option<Subnet> {
        if prefix < self.prefix || prefix > MAX_PREFIX {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if u64::from(n) >= count {
            return None;
        }
        let network = u32::from(self.network) + (n << (32 - u32::from(prefix)));
        Subnet::new(Ipv4Addr::from(network), prefix).ok()
    }
}

/// The netmask of a prefix length (0..=32).
fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// Whether `a/pa` and `b/pb` overlap, for any prefix lengths (host routes
/// of the kernel can be /0 or /32, which [`Subnet`] does not accept).
pub fn overlaps_raw(a: Ipv4Addr, pa: u8, b: Ipv4Addr, pb: u8) -> bool {
    let m = mask(pa.min(pb));
    u32::from(a) & m == u32::from(b) & m
}

impl FromStr for Subnet {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Subnet> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| invalid(s, "expected ADDRESS/PREFIX, e.g. 10.89.3.0/24"))?;
        if addr.contains(':') {
            return Err(invalid(s, "IPv6 subnets are not supported"));
        }
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| invalid(s, format!("{addr:?} is not an IPv4 address")))?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(s, format!("{prefix:?} is not a prefix length")));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid(s, format!("{prefix:?} is not a prefix length")))?;
        if prefix > 32 {
            return Err(invalid(s, "the prefix length is at most 32"));
        }
        Subnet::new(network, prefix).map_err(|e| match e {
            NetError::InvalidAddress { reason, .. } => invalid(s, reason),
            other => other,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv4 address given by the user (`--gateway`, `-p`'s host IP).
pub fn parse_ipv4(what: &'static str, s: &str) -> Result<Ipv4Addr> {
    s.parse().map_err(|_| NetError::InvalidAddress {
        what,
        value: s.to_owned(),
        reason: if s.contains(':') {
            "IPv6 is not supported".into()
        } else {
            "not an IPv4 address".into()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let s = net("10.89.3.0/24");
        assert_eq!(s.network(), Ipv4Addr::new(10, 89, 3, 0));
        assert_eq!(s.prefix(), 24);
        assert_eq!(s.to_string(), "10.89.3.0/24");
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 3, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 89, 3, 1));
        assert_eq!(s.hosts().count(), 254);
        assert_eq!(net("10.0.0.0/30").hosts().count(), 2);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"10.89.3.0/24\"");
        assert_eq!(serde_json::from_str::<Subnet>(&json).unwrap(), s);
    }

    #[test]
    fn malformed_subnets_are_refused_with_a_reason() {
        let cases = [
            ("", "ADDRESS/PREFIX"),
            ("10.0.0.0", "ADDRESS/PREFIX"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/abc", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0.0/999", "prefix length"),
            ("10.0.0.0/33", "at most 32"),
            ("10.0.0.0/4", "between 8 and 30"),
            ("10.0.0.0/31", "between 8 and 30"),
            ("10.0.0.1/24", "host bits"),
            ("300.0.0.0/24", "not an IPv4"),
            ("10.0.0/24", "not an IPv4"),
            ("fd00::/64", "IPv6"),
            ("10.0.0.0/24/1", "prefix length"),
            ("10.0.0.0 /24", "not an IPv4"),
        ];
        for (input, reason) in cases {
            let e = input.parse::<Subnet>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input:?}: {e}");
            assert!(e.contains(&format!("{input:?}")), "{input:?}: {e}");
        }
    }

    #[test]
    fn overlaps_and_contains() {
        let a = net("10.89.0.0/16");
        assert!(a.overlaps(&net("10.89.3.0/24")));
        assert!(net("10.89.3.0/24").overlaps(&a));
        assert!(!a.overlaps(&net("10.90.0.0/24")));
        assert!(a.contains(Ipv4Addr::new(10, 89, 255, 1)));
        assert!(!a.contains(Ipv4Addr::new(10, 90, 0, 1)));
        assert!(!a.is_host(a.network()) && !a.is_host(a.broadcast()));
        assert!(overlaps_raw(Ipv4Addr::UNSPECIFIED, 0, a.network(), 16));
        assert!(!overlaps_raw(
            Ipv4Addr::new(192, 0, 2, 0),
            24,
            a.network(),
            16
        ));
    }

    #[test]
    fn pool_subnets() {
        let pool = net("10.90.0.0/16");
        assert_eq!(pool.nth_subnet(24, 0).unwrap().to_string(), "10.90.0.0/24");
        assert_eq!(
            pool.nth_subnet(24, 255).unwrap().to_string(),
            "10.90.255.0/24"
        );
        assert!(pool.nth_subnet(24, 256).is_none());
        assert!(pool.nth_subnet(8, 0).is_none());
    }

    #[test]
    fn ipv4_addresses() {
        assert_eq!(
            parse_ipv4("gateway", "10.0.0.1").unwrap(),
            Ipv4Addr::new(10, 0, 0, 1)
        );
        let e = parse_ipv4("gateway", "::1").unwrap_err().to_string();
        assert!(e.contains("IPv6"), "{e}");
        let e = parse_ipv4("gateway", "x").unwrap_err().to_string();
        assert!(e.contains("gateway") && e.contains("\"x\""), "{e}");
    }
}
