//! virtio-net on a tap device, as Firecracker has it: one RX and one TX
//! queue, the MAC from `guest_mac` (`VIRTIO_NET_F_MAC`; without one the
//! guest picks its own), the link status (`VIRTIO_NET_F_STATUS`, always
//! up), checksum and segmentation offloads passed through to the tap, and
//! an RX and a TX rate limiter. The tap is opened when the VM is built,
//! before any vCPU runs; all frame I/O happens on the device's thread.

pub mod device;
pub mod frame;
pub mod handle;
pub mod persist;
pub mod tap;

use std::sync::Arc;

use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_net::*;

use super::interrupt::Interrupt;
use super::mmio::DeviceInfo;
use super::{ConfigSpace, QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::config::devices::{parse_mac, NetConfig};
pub use device::NetBackend;
pub use handle::{Limits, NetHandle};
pub use tap::{Tap, TapError};

/// Errors setting up a network interface.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The tap cannot be used.
    #[error("Cannot set up network interface {iface_id:?} on host_dev_name {host_dev_name:?}")]
    Tap {
        /// Interface id.
        iface_id: String,
        /// Tap name.
        host_dev_name: String,
        /// The cause (boxed: it names the tap again, and build errors
        /// travel by value).
        #[source]
        source: Box<TapError>,
    },
    /// A rate limiter's timer or the handle's eventfd.
    #[error("Cannot create the rate limiters of network interface {0:?}")]
    RateLimiter(String, #[source] std::io::Error),
}

/// `struct virtio_net_config` up to `max_virtqueue_pairs`: mac, status,
/// max_virtqueue_pairs.
pub const CONFIG_SPACE_LEN: usize = 10;

/// Features offered: virtio 1.x, link status, the MAC when configured, and
/// the offloads a tap carries (checksums both ways, TSO and UFO).
pub fn features(has_mac: bool) -> u64 {
    let bit = |b: u32| 1u64 << b;
    let mut f = VIRTIO_F_VERSION_1
        | bit(VIRTIO_NET_F_STATUS)
        | bit(VIRTIO_NET_F_CSUM)
        | bit(VIRTIO_NET_F_GUEST_CSUM)
        | bit(VIRTIO_NET_F_GUEST_TSO4)
        | bit(VIRTIO_NET_F_GUEST_TSO6)
        | bit(VIRTIO_NET_F_GUEST_UFO)
        | bit(VIRTIO_NET_F_HOST_TSO4)
        | bit(VIRTIO_NET_F_HOST_TSO6)
        | bit(VIRTIO_NET_F_HOST_UFO);
    if has_mac {
        f |= bit(VIRTIO_NET_F_MAC);
    }
    f
}

/// The configuration space: `mac` (zeroes without one), link up, one
/// queue pair.
pub fn config_space(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut c = vec![0u8; CONFIG_SPACE_LEN];
    c[..6].copy_from_slice(&mac.unwrap_or_default());
    c[6..8].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
    c[8..10].copy_from_slice(&1u16.to_le_bytes());
    c
}

/// Attaches to `config`'s tap now, as a build would (the API's pre-boot
/// check); the tap is released again.
pub fn check_host(config: &NetConfig) -> Result<(), NetError> {
    open_tap(config).map(drop)
}

fn open_tap(config: &NetConfig) -> Result<Tap, NetError> {
    Tap::open(&config.host_dev_name).map_err(|source| NetError::Tap {
        iface_id: config.iface_id.clone(),
        host_dev_name: config.host_dev_name.clone(),
        source: Box::new(source),
    })
}

/// The transport's description, the backend of `config` and the VMM
/// thread's handle on it; the tap is opened here.
pub fn create(
    config: &NetConfig,
    interrupt: Arc<Interrupt>,
) -> Result<(DeviceInfo, NetBackend, NetHandle), NetError> {
    let tap = open_tap(config)?;
    // DevicesConfig::check refused a malformed MAC before.
    let mac = config.guest_mac.as_deref().and_then(parse_mac);
    let limits = Limits {
        rx: config.rx_rate_limiter,
        tx: config.tx_rate_limiter,
    };
    let (backend, handle) = NetBackend::new(&config.iface_id, tap, interrupt, limits)
        .map_err(|e| NetError::RateLimiter(config.iface_id.clone(), e))?;
    let info = DeviceInfo {
        device_type: VIRTIO_ID_NET,
        queue_sizes: vec![QUEUE_SIZE; 2],
        features: features(mac.is_some()),
        config: Arc::new(ConfigSpace::new(config_space(mac), 0..0)),
    };
    Ok((info, backend, handle))
}

#[cfg(test)]
mod tests;
