//! The errors of vessel's networking: each names the network, container,
//! link, port or file concerned, with the system's reason as `#[source]`.

use std::io;
use std::path::PathBuf;

/// Failures of networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed.
    #[error("netlink: cannot {op}")]
    Netlink {
        /// What was asked (`create bridge vessel0`, ...).
        op: String,
        /// The kernel's reason.
        #[source]
        source: io::Error,
    },
    /// A netlink reply did not parse.
    #[error("netlink: malformed reply to {op}: {reason}")]
    NetlinkReply {
        /// What was asked.
        op: String,
        /// The decoder's reason.
        reason: String,
    },
    /// A file of the network store or of the system could not be used.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The network store's file does not parse.
    #[error("corrupt network state {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// A system call failed.
    #[error("{call} failed")]
    Sys {
        /// The call.
        call: &'static str,
        /// Its errno.
        #[source]
        source: nix::Error,
    },
    /// A subnet or address that does not parse or cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidAddress {
        /// `subnet`, `gateway`, `IP address`.
        what: &'static str,
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A `-p` value that does not parse.
    #[error("invalid port mapping {value:?}: {reason}")]
    InvalidPort {
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A network name docker would refuse.
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 64 characters) is allowed")]
    InvalidName(String),
    /// No network has this name.
    #[error("network {0} not found")]
    NotFound(String),
    /// The name is taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// The network cannot be removed or changed while containers use it.
    #[error("network {name} has active endpoints (containers {containers})")]
    InUse {
        /// The network.
        name: String,
        /// The containers, comma separated.
        containers: String,
    },
    /// The predefined network cannot be removed.
    #[error("network {0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// The subnet overlaps another network or a route of the host.
    #[error("subnet {subnet} overlaps {other}")]
    Overlap {
        /// The subnet asked for.
        subnet: String,
        /// What it overlaps (`network foo (10.89.1.0/24)`, `the host's route 10.0.0.0/8 on eth0`).
        other: String,
    },
    /// No free subnet is left in the pool.
    #[error("no free subnet left in the pool {0} (every /24 overlaps a network or a host route)")]
    PoolExhausted(String),
    /// Every address of the network is in use.
    #[error("network {network} has no free address left in {subnet}")]
    AddressesExhausted {
        /// The network.
        network: String,
        /// Its subnet.
        subnet: String,
    },
    /// The container is not (or already) connected to the network.
    #[error("container {container} {reason} network {network}")]
    Endpoint {
        /// The container.
        container: String,
        /// `is already connected to`, `is not connected to`.
        reason: &'static str,
        /// The network.
        network: String,
    },
    /// A host port could not be reserved.
    #[error("cannot publish port {mapping}: host port {addr} is not available")]
    PortInUse {
        /// The mapping as docker prints it (`127.0.0.1:8080->80/tcp`).
        mapping: String,
        /// The host address and port.
        addr: String,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// `nft` could not be run.
    #[error("cannot run nft (install the nftables package)")]
    NftSpawn(#[source] io::Error),
    /// `nft` refused a ruleset.
    #[error("nft {what} failed: {stderr}")]
    Nft {
        /// What was asked.
        what: String,
        /// nft's message.
        stderr: String,
    },
}

/// A networking result.
pub type Result<T> = std::result::Result<T, NetError>;

impl NetError {
    /// A closure mapping an I/O error on `path` to [`NetError::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> NetError {
        let path = path.into();
        move |source| NetError::Io { op, path, source }
    }

    /// A closure mapping a nix error of `call` to [`NetError::Sys`].
    pub fn sys(call: &'static str) -> impl FnOnce(nix::Error) -> NetError {
        move |source| NetError::Sys { call, source }
    }
}
