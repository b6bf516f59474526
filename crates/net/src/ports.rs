//! Published ports: docker's `-p` syntax, and the host-port reservation
//! that makes a port in use a clear error. The traffic itself is DNATed by
//! [`crate::firewall`]; the reservation is a socket bound to the host port
//! and held by the container's monitor for as long as the mapping exists
//! (as podman's conmon does), so no other program — and no other container
//! — can take the port meanwhile.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::str::FromStr;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `-p` value: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// The host address to listen on; `None` for every address.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; `None` for one the kernel picks.
    pub host_port: Option<u16>,
    /// The port inside the container.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

fn invalid(value: &str, reason: impl Into<String>) -> NetError {
    NetError::InvalidPort {
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn port(value: &str, what: &str, s: &str) -> Result<u16> {
    if s.contains('-') {
        return Err(invalid(value, "port ranges are not supported"));
    }
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(value, format!("{what} {s:?} is not a port number")));
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(invalid(
            value,
            format!("{what} {s} is not between 1 and 65535"),
        )),
    }
}

impl FromStr for PortSpec {
    type Err = NetError;

    fn from_str(value: &str) -> Result<PortSpec> {
        if value.starts_with('[') || value.matches(':').count() > 2 {
            return Err(invalid(value, "IPv6 host addresses are not supported"));
        }
        let (rest, protocol) = match value.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((_, p)) => {
                return Err(invalid(value, format!("protocol {p:?} is not tcp or udp")))
            }
            None => (value, Protocol::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), Some(*h), *c),
            _ => unreachable!("at most two colons"),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                crate::subnet::parse_ipv4("host IP", ip)
                    .map_err(|_| invalid(value, format!("{ip:?} is not an IPv4 address")))?,
            ),
        };
        let host_port = match host {
            None | Some("") => None,
            Some(h) => Some(port(value, "host port", h)?),
        };
        Ok(PortSpec {
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            host_port,
            container_port: port(value, "container port", container)?,
            protocol,
        })
    }
}

/// `EXPOSE` entries of an image config (`80/tcp`, `53/udp`, `8080`) as
/// specs with random host ports (`-P`).
pub fn from_exposed(exposed: &str) -> Result<PortSpec> {
    let spec: PortSpec = exposed.parse()?;
    if spec.host_port.is_some() || spec.host_ip.is_some() {
        return Err(invalid(exposed, "an exposed port is PORT[/PROTOCOL]"));
    }
    Ok(spec)
}

/// A port mapping in effect: the host side resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The host address (0.0.0.0 for all of them).
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl fmt::Display for PublishedPort {
    /// Docker's `ps` form: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip,
            self.host_port,
            self.container_port,
            self.protocol.as_str()
        )
    }
}

/// A host port held for a mapping: a socket bound to it (never listening;
/// the DNAT rule sends the traffic to the container before any socket
/// lookup). Dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    /// The mapping with its host port resolved.
    pub port: PublishedPort,
    _socket: OwnedFd,
}

/// Bind the host side of `spec` (the kernel picks the port when the spec
/// has none). A port already taken — by any program, or by another
/// container's reservation — is [`NetError::PortInUse`].
pub fn reserve(spec: &PortSpec) -> Result<Reservation> {
    let ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let kind = match spec.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let wanted = spec.host_port.unwrap_or(0);
    let in_use = |source: std::io::Error| NetError::PortInUse {
        mapping: format!(
            "{ip}:{}->{}/{}",
            spec.host_port.map_or("?".to_owned(), |p| p.to_string()),
            spec.container_port,
            spec.protocol.as_str()
        ),
        addr: format!("{ip}:{wanted}/{}", spec.protocol.as_str()),
        source,
    };
    let socket = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)
        .map_err(NetError::sys("socket"))?;
    // No SO_REUSEADDR: with it, two sockets that never listen could share
    // the port, and the reservation would reserve nothing.
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &SockaddrIn::from(SocketAddrV4::new(ip, wanted)),
    )
    .map_err(|e| in_use(std::io::Error::from(e)))?;
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&socket))
        .map_err(NetError::sys("getsockname"))?;
    Ok(Reservation {
        port: PublishedPort {
            host_ip: ip,
            host_port: bound.port(),
            container_port: spec.container_port,
            protocol: spec.protocol,
        },
        _socket: socket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn docker_forms() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host_ip: None,
                host_port: Some(8080),
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        let s = p("127.0.0.1:8080:80/udp");
        assert_eq!(s.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(s.protocol, Protocol::Udp);
        let random = p("80");
        assert_eq!((random.host_port, random.container_port), (None, 80));
        let random_on_ip = p("127.0.0.1::80/tcp");
        assert_eq!(random_on_ip.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(random_on_ip.host_port, None);
        assert_eq!(p("0.0.0.0:1:2").host_ip, None);
        assert_eq!(from_exposed("53/udp").unwrap().protocol, Protocol::Udp);
    }

    #[test]
    fn bad_specs_name_the_reason() {
        let cases = [
            ("", "container port \"\""),
            ("abc", "not a port number"),
            ("0", "between 1 and 65535"),
            ("65536", "between 1 and 65535"),
            ("99999999999", "not a port number"),
            ("8080:", "container port"),
            (":80:", "container port"),
            ("8000-8010:80", "ranges"),
            ("80/sctp", "sctp"),
            ("80/", "protocol"),
            ("1.2.3:80:80", "not an IPv4"),
            ("localhost:80:80", "not an IPv4"),
            ("[::1]:80:80", "IPv6"),
            ("::1:80:80", "IPv6"),
            ("+80", "not a port number"),
            ("8080:80:", "\"8080\" is not an IPv4 address"),
        ];
        for (input, reason) in cases {
            let e = input.parse::<PortSpec>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input:?}: {e}");
        }
        assert!(from_exposed("127.0.0.1:80:80").is_err());
    }

    #[test]
    fn published_port_prints_as_docker() {
        let port = PublishedPort {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(port.to_string(), "0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn a_reserved_port_is_in_use_until_released() {
        let spec = PortSpec {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: None,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let held = reserve(&spec).unwrap();
        let port = held.port.host_port;
        assert_ne!(port, 0);
        let again = PortSpec {
            host_port: Some(port),
            ..spec
        };
        let e = reserve(&again).unwrap_err().to_string();
        assert!(e.contains(&format!("127.0.0.1:{port}/tcp")), "{e}");
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        drop(held);
        drop(reserve(&again).unwrap());
    }
}
