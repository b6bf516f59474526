//! virtio-vsock with Firecracker's host side: the VMM listens on the Unix
//! socket `uds_path`; a host client writes `CONNECT <port>\n` and, once
//! the guest accepts, reads `OK <host_port>\n` and then talks to the
//! guest's port. A guest connection to host port P is a connection to
//! `uds_path_P`. Queue 0 (RX) carries packets to the guest, queue 1 (TX)
//! packets from it, queue 2 (events) stays idle.
//!
//! Bytes from a host socket are read only straight into an RX buffer of
//! the guest and only within the guest's credit, so a slow guest never
//! makes the VMM buffer: the socket is simply not polled until there is
//! room. Bytes from the guest are bounded by the credit vessel gives
//! ([`BUF_ALLOC`]).

pub mod conn;
pub mod packet;
pub mod persist;

use std::os::unix::net::UnixListener;
use std::sync::Arc;

use event_manager::{EventOps, EventSet};

use super::interrupt::Interrupt;
use super::mmio::DeviceInfo;
use super::worker::{Activation, Backend};
use super::{ConfigSpace, QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::config::devices::VsockConfig;
pub use conn::Muxer;

/// `VIRTIO_ID_VSOCK`.
pub const VIRTIO_ID_VSOCK: u32 = 19;
/// Receive buffer space vessel announces per connection.
pub const BUF_ALLOC: u32 = 256 << 10;

/// Errors setting up the vsock device.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    /// The socket path is taken.
    #[error("vsock.uds_path {0:?} already exists (remove it, or choose another path)")]
    Exists(std::path::PathBuf),
    /// bind(2) failed.
    #[error("Cannot listen on vsock.uds_path {0:?}")]
    Bind(std::path::PathBuf, #[source] std::io::Error),
}

/// Binds `config.uds_path` (refused when the path exists, since
/// Firecracker does not remove what it did not create either).
pub fn listen(config: &VsockConfig) -> Result<UnixListener, VsockError> {
    let path = &config.uds_path;
    if path.symlink_metadata().is_ok() {
        return Err(VsockError::Exists(path.clone()));
    }
    let listener = UnixListener::bind(path).map_err(|e| VsockError::Bind(path.clone(), e))?;
    conn::nonblocking(&listener).map_err(|e| VsockError::Bind(path.clone(), e))?;
    Ok(listener)
}

/// The `uds_path` vessel bound: removed when this goes, so that the next
/// VM may use the path. Kept with the VM's devices on the VMM thread, not
/// in the backend: device threads run under a seccomp filter without
/// `unlink(2)`.
#[derive(Debug)]
pub struct BoundPath(std::path::PathBuf);

impl Drop for BoundPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Checks that `config.uds_path` can be listened on now, leaving nothing
/// behind (the API's pre-boot check).
pub fn check_host(config: &VsockConfig) -> Result<(), VsockError> {
    let listener = listen(config)?;
    drop(listener);
    let _ = std::fs::remove_file(&config.uds_path);
    Ok(())
}

/// The device thread's half.
#[derive(Debug)]
pub struct VsockBackend {
    muxer: Muxer,
}

impl Backend for VsockBackend {
    fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        self.muxer.activate(a, ops);
    }

    fn queue_event(&mut self, _index: usize, ops: &mut EventOps) {
        self.muxer.process(ops);
    }

    fn device_event(&mut self, tag: u32, events: EventSet, ops: &mut EventOps) {
        self.muxer.host_event(tag, events, ops);
        self.muxer.process(ops);
    }

    fn reset(&mut self, ops: &mut EventOps) {
        self.muxer.reset(ops);
    }
}

/// The transport's description and the backend of the vsock device, and
/// the guard of `uds_path`, which is bound here, before any vCPU runs.
pub fn create(
    config: &VsockConfig,
    interrupt: Arc<Interrupt>,
) -> Result<(DeviceInfo, VsockBackend, BoundPath), VsockError> {
    let listener = listen(config)?;
    let bound = BoundPath(config.uds_path.clone());
    let mut space = vec![0u8; 8];
    space.copy_from_slice(&u64::from(config.guest_cid).to_le_bytes());
    let info = DeviceInfo {
        device_type: VIRTIO_ID_VSOCK,
        queue_sizes: vec![QUEUE_SIZE; 3],
        features: VIRTIO_F_VERSION_1,
        config: Arc::new(ConfigSpace::new(space, 0..0)),
    };
    let muxer = Muxer::new(
        u64::from(config.guest_cid),
        config.uds_path.clone(),
        listener,
        interrupt,
    );
    Ok((info, VsockBackend { muxer }, bound))
}
