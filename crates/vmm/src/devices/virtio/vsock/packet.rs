//! vsock packets as the guest puts them on the TX queue: a 44-byte
//! little-endian header (virtio spec 5.10.6) and `len` payload bytes in the
//! chain's readable buffers. Everything in the header is the guest's word:
//! [`parse`] checks the sizes, the addresses and the socket type before
//! anything acts on it, and a refusal carries the ports when they could be
//! read so that the device can answer with a RST.

use vm_memory::GuestMemoryMmap;

use super::super::queue::Chain;

/// Size of `struct virtio_vsock_hdr`.
pub const HEADER_LEN: usize = 44;
/// Largest payload vessel takes in one packet (Linux sends at most 64 KiB).
pub const MAX_PAYLOAD: u32 = 64 << 10;
/// The host's context id.
pub const HOST_CID: u64 = 2;
/// `VIRTIO_VSOCK_TYPE_STREAM`, the only socket type.
pub const TYPE_STREAM: u16 = 1;

/// `VIRTIO_VSOCK_OP_*`.
pub mod op {
    /// Connection request.
    pub const REQUEST: u16 = 1;
    /// Connection accepted.
    pub const RESPONSE: u16 = 2;
    /// Reset: refused or closed.
    pub const RST: u16 = 3;
    /// No more data in one or both directions.
    pub const SHUTDOWN: u16 = 4;
    /// Data.
    pub const RW: u16 = 5;
    /// Here is my buffer space.
    pub const CREDIT_UPDATE: u16 = 6;
    /// Tell me your buffer space.
    pub const CREDIT_REQUEST: u16 = 7;
}

/// `VIRTIO_VSOCK_SHUTDOWN_*` flags.
pub mod shutdown {
    /// The sender will receive no more.
    pub const RCV: u32 = 1;
    /// The sender will send no more.
    pub const SEND: u32 = 2;
}

/// `struct virtio_vsock_hdr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// Source context id.
    pub src_cid: u64,
    /// Destination context id.
    pub dst_cid: u64,
    /// Source port.
    pub src_port: u32,
    /// Destination port.
    pub dst_port: u32,
    /// Payload length.
    pub len: u32,
    /// Socket type.
    pub type_: u16,
    /// Operation.
    pub op: u16,
    /// Operation flags.
    pub flags: u32,
    /// The sender's receive buffer size.
    pub buf_alloc: u32,
    /// Bytes the sender has taken out of its receive buffer.
    pub fwd_cnt: u32,
}

impl Header {
    /// Decodes the wire form.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        let u16_at = |i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap_or([0; 2]));
        Header {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }

    /// The wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

/// A packet from the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Its header.
    pub header: Header,
    /// `header.len` bytes (only for `RW`; empty otherwise).
    pub payload: Vec<u8>,
}

/// Why a TX chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer readable bytes than a header.
    #[error("vsock packet of {0} readable bytes, shorter than its {HEADER_LEN}-byte header")]
    Short(u64),
    /// The header could not be read from guest memory.
    #[error("vsock packet header cannot be read from guest memory")]
    Unreadable,
    /// `len` past [`MAX_PAYLOAD`] or past the chain.
    #[error("vsock packet claims {len} payload bytes, the chain holds {available} (at most {MAX_PAYLOAD})")]
    Length {
        /// What the header claims.
        len: u32,
        /// What follows the header in the chain.
        available: u64,
    },
    /// Not a stream socket.
    #[error("vsock packet of socket type {0}, only streams (1) exist")]
    Type(u16),
    /// The guest claims another CID or writes to another than the host.
    #[error(
        "vsock packet from CID {src} to CID {dst}; the guest is {guest} and talks to the host (2)"
    )]
    Cid {
        /// Claimed source.
        src: u64,
        /// Destination.
        dst: u64,
        /// The guest's real CID.
        guest: u64,
    },
}

/// A refused packet and, when its header was readable, the header to
/// answer with a RST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub error: PacketError,
    /// The header, if it could be read.
    pub header: Option<Header>,
}

/// Reads and checks the packet of a TX `chain` from a guest of CID
/// `guest_cid`.
pub fn parse(chain: &Chain, mem: &GuestMemoryMmap, guest_cid: u64) -> Result<Packet, Refused> {
    let refuse = |error, header| Refused { error, header };
    let readable = chain.readable_len();
    if readable < HEADER_LEN as u64 {
        return Err(refuse(PacketError::Short(readable), None));
    }
    let mut raw = [0u8; HEADER_LEN];
    if chain.read_at(mem, 0, &mut raw) != HEADER_LEN {
        return Err(refuse(PacketError::Unreadable, None));
    }
    let header = Header::decode(&raw);
    let available = readable - HEADER_LEN as u64;
    if header.len > MAX_PAYLOAD || u64::from(header.len) > available {
        return Err(refuse(
            PacketError::Length {
                len: header.len,
                available,
            },
            Some(header),
        ));
    }
    if header.type_ != TYPE_STREAM {
        return Err(refuse(PacketError::Type(header.type_), Some(header)));
    }
    if header.src_cid != guest_cid || header.dst_cid != HOST_CID {
        return Err(refuse(
            PacketError::Cid {
                src: header.src_cid,
                dst: header.dst_cid,
                guest: guest_cid,
            },
            Some(header),
        ));
    }
    let mut payload = Vec::new();
    if header.op == op::RW && header.len > 0 {
        payload = vec![0u8; header.len as usize];
        if chain.read_at(mem, HEADER_LEN as u64, &mut payload) != payload.len() {
            return Err(refuse(PacketError::Unreadable, Some(header)));
        }
    }
    Ok(Packet { header, payload })
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::*;
    use crate::devices::virtio::queue::Segment;

    const GUEST: u64 = 3;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).expect("memory")
    }

    fn rw(len: u32) -> Header {
        Header {
            src_cid: GUEST,
            dst_cid: HOST_CID,
            src_port: 1000,
            dst_port: 52,
            len,
            type_: TYPE_STREAM,
            op: op::RW,
            flags: 0,
            buf_alloc: 4096,
            fwd_cnt: 7,
        }
    }

    /// A chain of readable buffers at 0x1000, 0x2000, … of `lens`.
    fn chain(mem: &GuestMemoryMmap, bytes: &[u8], lens: &[u32]) -> Chain {
        let mut c = Chain::default();
        let mut at = 0usize;
        for (i, &len) in lens.iter().enumerate() {
            let addr = GuestAddress(0x1000 * (i as u64 + 1));
            let end = (at + len as usize).min(bytes.len());
            mem.write_slice(&bytes[at.min(end)..end], addr)
                .expect("write");
            at = end;
            c.readable.push(Segment { addr, len });
        }
        c
    }

    #[test]
    fn header_round_trips_and_payload_spans_buffers() {
        let m = mem();
        let mut bytes = rw(5).encode().to_vec();
        bytes.extend_from_slice(b"hello");
        // Header split 40 + 4, payload in a third buffer.
        let c = chain(&m, &bytes, &[40, 4, 5]);
        let p = parse(&c, &m, GUEST).expect("valid");
        assert_eq!(p.header, rw(5));
        assert_eq!(p.payload, b"hello");
    }

    #[test]
    fn short_headers_are_refused_without_a_header() {
        let m = mem();
        let bytes = rw(0).encode();
        for lens in [&[][..], &[43][..], &[20, 23][..]] {
            let e = parse(&chain(&m, &bytes, lens), &m, GUEST).unwrap_err();
            assert!(matches!(e.error, PacketError::Short(_)), "{lens:?}");
            assert_eq!(e.header, None);
        }
    }

    #[test]
    fn lengths_past_the_chain_or_the_limit_are_refused_with_the_header() {
        let m = mem();
        for (len, have) in [(6, 5), (u32::MAX, 100), (MAX_PAYLOAD + 1, 0x2000)] {
            let h = rw(len);
            let c = chain(&m, &h.encode(), &[HEADER_LEN as u32, have]);
            let e = parse(&c, &m, GUEST).unwrap_err();
            assert!(matches!(e.error, PacketError::Length { .. }), "{len}");
            assert_eq!(e.header, Some(h));
        }
    }

    #[test]
    fn wrong_type_and_spoofed_cids_are_refused() {
        let m = mem();
        let mut h = rw(0);
        h.type_ = 2;
        let e = parse(&chain(&m, &h.encode(), &[44]), &m, GUEST).unwrap_err();
        assert_eq!(e.error, PacketError::Type(2));
        for (src, dst) in [
            (4, HOST_CID),
            (GUEST, 5),
            (HOST_CID, HOST_CID),
            (u64::MAX, 0),
        ] {
            let mut h = rw(0);
            h.src_cid = src;
            h.dst_cid = dst;
            let e = parse(&chain(&m, &h.encode(), &[44]), &m, GUEST).unwrap_err();
            assert!(matches!(e.error, PacketError::Cid { .. }), "{src} {dst}");
        }
    }

    #[test]
    fn buffers_outside_memory_read_as_unreadable() {
        let m = mem();
        // A chain nobody validated: the copy stops at the end of memory.
        let c = Chain {
            readable: vec![Segment {
                addr: GuestAddress(0xfff0),
                len: 64,
            }],
            ..Chain::default()
        };
        let e = parse(&c, &m, GUEST).unwrap_err();
        assert_eq!(e.error, PacketError::Unreadable);
    }

    #[test]
    fn non_rw_packets_carry_no_payload() {
        let m = mem();
        let mut h = rw(8);
        h.op = op::REQUEST;
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(&[0xaa; 8]);
        let p = parse(&chain(&m, &bytes, &[52]), &m, GUEST).expect("valid");
        assert!(p.payload.is_empty());
    }
}
