//! Frames between a guest's descriptor chains and the tap, checked against
//! what the guest may have put in the chain: a TX chain is the virtio-net
//! header and the frame, device-readable only, no shorter than the header
//! and an Ethernet header and no longer than the largest frame; an RX chain
//! is device-writable only and must hold the whole frame (a frame is never
//! truncated; it is dropped). Copies go through [`Chain`]'s bounds-checked
//! accessors, so a buffer outside guest memory was already refused by
//! [`Chain::parse`].

use virtio_bindings::virtio_net::*;
use vm_memory::GuestMemoryMmap;

use crate::devices::virtio::queue::Chain;

/// `struct virtio_net_hdr_v1`: the header before every frame in virtio 1.x
/// (with `num_buffers`), and the size the tap is told to use.
pub const VNET_HDR_LEN: usize = std::mem::size_of::<virtio_net_hdr_v1>();
/// Offset of `num_buffers` in the header.
const NUM_BUFFERS_OFFSET: usize = 10;
/// An Ethernet header: destination, source, type.
pub const ETH_HDR_LEN: usize = 14;
/// The largest frame with its header: a 64 KiB segmentation-offload
/// packet, its Ethernet and VLAN headers (Firecracker's bound).
pub const MAX_BUFFER_LEN: usize = VNET_HDR_LEN + 65550;

/// Why a chain cannot carry a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A TX chain shorter than the headers.
    #[error("TX chain of {0} bytes is shorter than the virtio-net and Ethernet headers ({min} bytes)", min = VNET_HDR_LEN + ETH_HDR_LEN)]
    TooShort(u64),
    /// A TX chain longer than any frame.
    #[error("TX chain of {0} bytes is longer than the largest frame ({MAX_BUFFER_LEN} bytes)")]
    TooLong(u64),
    /// A TX chain with buffers for the device to write.
    #[error("TX chain has device-writable buffers")]
    WritableTx,
    /// An RX chain with buffers for the device to read.
    #[error("RX chain has device-readable buffers")]
    ReadableRx,
    /// An RX chain too small for the frame.
    #[error("RX chain of {have} bytes cannot hold a frame of {need} bytes")]
    TooSmall {
        /// Bytes the chain holds.
        have: u64,
        /// Bytes of the frame with its header.
        need: usize,
    },
    /// Guest memory could not be copied (it changed under the device).
    #[error("Guest memory access failed")]
    Memory,
}

/// Reads a TX chain into `buf` (at least [`MAX_BUFFER_LEN`] bytes): the
/// header and frame, ready for the tap; returns their length.
pub fn read_tx(chain: &Chain, mem: &GuestMemoryMmap, buf: &mut [u8]) -> Result<usize, FrameError> {
    if !chain.writable.is_empty() {
        return Err(FrameError::WritableTx);
    }
    let len = chain.readable_len();
    if len < (VNET_HDR_LEN + ETH_HDR_LEN) as u64 {
        return Err(FrameError::TooShort(len));
    }
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_BUFFER_LEN && n <= buf.len())
        .ok_or(FrameError::TooLong(len))?;
    if chain.read_at(mem, 0, &mut buf[..n]) != n {
        return Err(FrameError::Memory);
    }
    Ok(n)
}

/// Writes `frame` (header and frame as read from the tap) into an RX
/// chain, with `num_buffers` set to 1; returns the bytes written.
pub fn write_rx(chain: &Chain, mem: &GuestMemoryMmap, frame: &mut [u8]) -> Result<u32, FrameError> {
    if !chain.readable.is_empty() {
        return Err(FrameError::ReadableRx);
    }
    let have = chain.writable_len();
    if have < frame.len() as u64 {
        return Err(FrameError::TooSmall {
            have,
            need: frame.len(),
        });
    }
    // The tap skips num_buffers (its header is the 10-byte legacy one);
    // without VIRTIO_NET_F_MRG_RXBUF a frame is always one buffer.
    if let Some(n) = frame.get_mut(NUM_BUFFERS_OFFSET..VNET_HDR_LEN) {
        n.copy_from_slice(&1u16.to_le_bytes());
    }
    if chain.write_at(mem, 0, frame) != frame.len() {
        return Err(FrameError::Memory);
    }
    u32::try_from(frame.len()).map_err(|_| FrameError::Memory)
}

/// The tap offloads (`TUN_F_*`) a driver that accepted `features` can
/// take in received frames. Segmentation needs checksum offload (the tap
/// ignores TSO/UFO without `TUN_F_CSUM`, and the spec requires it too).
pub fn tap_offload(features: u64) -> libc::c_uint {
    let has = |bit: u32| features & (1u64 << bit) != 0;
    if !has(VIRTIO_NET_F_GUEST_CSUM) {
        return 0;
    }
    let mut flags = libc::TUN_F_CSUM;
    for (bit, flag) in [
        (VIRTIO_NET_F_GUEST_TSO4, libc::TUN_F_TSO4),
        (VIRTIO_NET_F_GUEST_TSO6, libc::TUN_F_TSO6),
        (VIRTIO_NET_F_GUEST_ECN, libc::TUN_F_TSO_ECN),
        (VIRTIO_NET_F_GUEST_UFO, libc::TUN_F_UFO),
    ] {
        if has(bit) {
            flags |= flag;
        }
    }
    flags
}
