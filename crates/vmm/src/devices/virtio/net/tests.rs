//! Frames over hostile queues: TX and RX chains written by hand into guest
//! memory, served by the backend with one end of a datagram socket pair as
//! its "tap" (a read returns one datagram, as a tap returns one frame).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;

use virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use super::device::NetBackend;
use super::frame::{read_tx, tap_offload, write_rx, FrameError, MAX_BUFFER_LEN, VNET_HDR_LEN};
use super::handle::patched;
use super::*;
use crate::config::devices::{RateLimiterConfig, TokenBucketConfig};
use crate::devices::virtio::queue::tests::{
    interrupt, Driver, AVAIL, DESC, NEXT, SIZE, USED, WRITE,
};
use crate::devices::virtio::queue::{Chain, Popped};
use crate::devices::virtio::worker::Activation;

/// The RX queue's rings (the TX queue is the Driver's, below 0x4000).
const RX_DESC: u64 = 0x4000;
const RX_AVAIL: u64 = 0x5000;
const RX_USED: u64 = 0x6000;
const RX_SIZE: u16 = 16;
const FRAME: u64 = 0x10000;
const BUF: u64 = 0x30000;

/// A virtio-net device on a socket pair, with its driver.
struct Rig {
    d: Driver,
    net: NetBackend,
    handle: NetHandle,
    irq: Arc<Interrupt>,
    peer: UnixDatagram,
    rx_avail: u16,
}

/// At most `size` frames a minute.
fn per_minute(size: u64) -> RateLimiterConfig {
    RateLimiterConfig {
        bandwidth: None,
        ops: Some(TokenBucketConfig {
            size,
            one_time_burst: None,
            refill_time: 60_000,
        }),
    }
}

fn queue_at(desc: u64, avail: u64, used: u64, size: u16) -> Queue {
    let mut q = Queue::new(size).expect("queue");
    q.set_size(size);
    q.set_desc_table_address(Some(desc as u32), Some(0));
    q.set_avail_ring_address(Some(avail as u32), Some(0));
    q.set_used_ring_address(Some(used as u32), Some(0));
    q.set_ready(true);
    q
}

impl Rig {
    fn new(rx_ops: Option<u64>, tx_ops: Option<u64>) -> Rig {
        let d = Driver::new();
        let (ours, peer) = UnixDatagram::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("nonblocking");
        peer.set_nonblocking(true).expect("nonblocking");
        let tap = Tap::from_file(File::from(OwnedFd::from(ours)), "test0");
        let irq = interrupt();
        let limits = Limits {
            rx: rx_ops.map(per_minute),
            tx: tx_ops.map(per_minute),
        };
        let (mut net, handle) = NetBackend::new("eth0", tap, irq.clone(), limits).expect("backend");
        let rx = queue_at(RX_DESC, RX_AVAIL, RX_USED, RX_SIZE);
        // The TX queue over the Driver's rings.
        let tx = queue_at(DESC, AVAIL, USED, SIZE);
        net.start(Activation {
            mem: d.mem.clone(),
            queues: vec![rx, tx],
            features: VIRTIO_F_VERSION_1,
        });
        Rig {
            d,
            net,
            handle,
            irq,
            peer,
            rx_avail: 0,
        }
    }

    /// Writes a frame (header and `payload`) at FRAME; returns its length.
    fn frame(&self, payload: &[u8]) -> u32 {
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(payload);
        self.d
            .mem
            .write_slice(&f, GuestAddress(FRAME))
            .expect("frame");
        f.len() as u32
    }

    /// Publishes a TX chain and serves the TX queue.
    fn send(&mut self, head: u16, bufs: &[(u64, u32, bool)]) {
        if !bufs.is_empty() {
            self.d.chain(head, bufs);
        }
        self.d.publish(head);
        self.net.process_tx();
    }

    /// A frame as the peer received it, if one came.
    fn received(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; MAX_BUFFER_LEN];
        let n = self.peer.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Publishes an RX chain (descriptors from `first`) and serves RX.
    fn give_rx(&mut self, first: u16, bufs: &[(u64, u32, bool)]) {
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = first + k as u16;
            let flags = if k + 1 < bufs.len() { NEXT } else { 0 } | if w { WRITE } else { 0 };
            self.d.desc_at(RX_DESC, i, addr, len, flags, i + 1);
        }
        self.publish_rx(first);
    }

    fn publish_rx(&mut self, head: u16) {
        let slot = GuestAddress(RX_AVAIL + 4 + 2 * u64::from(self.rx_avail % RX_SIZE));
        self.d.mem.write_obj(head, slot).expect("ring");
        self.rx_avail = self.rx_avail.wrapping_add(1);
        self.d
            .mem
            .write_obj(self.rx_avail, GuestAddress(RX_AVAIL + 2))
            .expect("idx");
        self.net.process_rx();
    }

    fn rx_used(&self) -> Vec<(u32, u32)> {
        let idx: u16 = self.d.mem.read_obj(GuestAddress(RX_USED + 2)).expect("idx");
        (0..idx)
            .map(|i| {
                let at = RX_USED + 4 + 8 * u64::from(i % RX_SIZE);
                (
                    self.d.mem.read_obj(GuestAddress(at)).expect("id"),
                    self.d.mem.read_obj(GuestAddress(at + 4)).expect("len"),
                )
            })
            .collect()
    }

    /// The peer sends `payload` behind a header whose num_buffers is 0xeeee.
    fn inject(&self, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; VNET_HDR_LEN];
        f[10..12].copy_from_slice(&[0xee, 0xee]);
        f.extend_from_slice(payload);
        self.peer.send(&f).expect("send");
        f
    }
}

fn eth(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 3 + 1) as u8).collect()
}

fn one_chain(d: &mut Driver, bufs: &[(u64, u32, bool)]) -> Chain {
    d.chain(0, bufs);
    d.publish(0);
    match d.pop() {
        Ok(Some(Popped::Chain(c))) => c,
        other => panic!("not a chain: {other:?}"),
    }
}

#[test]
fn tx_chains_are_checked_before_a_frame_is_read() {
    let mut d = Driver::new();
    let mut buf = vec![0u8; MAX_BUFFER_LEN];
    let hdr = VNET_HDR_LEN as u32;
    // The header alone, or the header and part of an Ethernet header.
    for len in [0, 1, hdr, hdr + 13] {
        let c = one_chain(&mut d, &[(FRAME, len, false)]);
        assert_eq!(
            read_tx(&c, &d.mem, &mut buf),
            Err(FrameError::TooShort(u64::from(len)))
        );
    }
    // One byte over the largest frame, split over two buffers.
    let c = one_chain(&mut d, &[(FRAME, 40_000, false), (BUF, 25_563, false)]);
    assert_eq!(
        read_tx(&c, &d.mem, &mut buf),
        Err(FrameError::TooLong(MAX_BUFFER_LEN as u64 + 1))
    );
    // Writable buffers in a TX chain.
    let c = one_chain(&mut d, &[(FRAME, 60, false), (BUF, 16, true)]);
    assert_eq!(read_tx(&c, &d.mem, &mut buf), Err(FrameError::WritableTx));
    // The header in one buffer, the frame in another: read as one.
    d.mem
        .write_slice(&[7u8; 12], GuestAddress(FRAME))
        .expect("hdr");
    d.mem
        .write_slice(&eth(60), GuestAddress(BUF))
        .expect("frame");
    let c = one_chain(&mut d, &[(FRAME, hdr, false), (BUF, 60, false)]);
    assert_eq!(read_tx(&c, &d.mem, &mut buf), Ok(72));
    assert_eq!(&buf[..12], &[7u8; 12]);
    assert_eq!(&buf[12..72], &eth(60)[..]);
    // A caller's buffer smaller than the chain is never overrun.
    assert_eq!(
        read_tx(&c, &d.mem, &mut buf[..50]),
        Err(FrameError::TooLong(72))
    );
}

#[test]
fn rx_chains_must_be_writable_and_hold_the_whole_frame() {
    let mut d = Driver::new();
    let mut frame = vec![0xeeu8; VNET_HDR_LEN];
    frame.extend_from_slice(&eth(100));
    let c = one_chain(&mut d, &[(BUF, 111, true)]);
    assert_eq!(
        write_rx(&c, &d.mem, &mut frame),
        Err(FrameError::TooSmall {
            have: 111,
            need: 112
        })
    );
    let c = one_chain(&mut d, &[(FRAME, 4, false), (BUF, 200, true)]);
    assert_eq!(
        write_rx(&c, &d.mem, &mut frame),
        Err(FrameError::ReadableRx)
    );
    // Nothing was written by the refusals.
    assert_eq!(d.mem.read_obj::<u8>(GuestAddress(BUF)).expect("r"), 0);
    // Split across three buffers, num_buffers set to 1.
    let c = one_chain(
        &mut d,
        &[
            (BUF, 5, true),
            (BUF + 0x100, 50, true),
            (BUF + 0x200, 100, true),
        ],
    );
    assert_eq!(write_rx(&c, &d.mem, &mut frame), Ok(112));
    let mut got = [0u8; 112];
    assert_eq!(c.writable.len(), 3);
    let mut at = 0;
    for (addr, len) in [(BUF, 5usize), (BUF + 0x100, 50), (BUF + 0x200, 57)] {
        d.mem
            .read_slice(&mut got[at..at + len], GuestAddress(addr))
            .expect("read");
        at += len;
    }
    assert_eq!(&got[..10], &[0xee; 10]);
    assert_eq!(&got[10..12], &[1, 0], "num_buffers");
    assert_eq!(&got[12..], &eth(100)[..]);
}

#[test]
fn hostile_tx_chains_are_returned_unsent_and_good_ones_still_go() {
    let mut r = Rig::new(None, None);
    let len = r.frame(&eth(60));
    // Too short, a loop, a buffer outside guest memory, a buffer wrapping
    // the address space, writable after readable.
    r.send(0, &[(FRAME, VNET_HDR_LEN as u32, false)]);
    r.d.desc(1, FRAME, len, NEXT, 1);
    r.send(1, &[]);
    r.send(2, &[(FRAME, 12, false), (0x7fff_0000_0000, 60, false)]);
    r.send(4, &[(u64::MAX - 10, 100, false)]);
    r.send(5, &[(BUF, 8, true), (FRAME, len, false)]);
    assert_eq!(r.received(), None, "nothing reached the tap");
    assert_eq!(
        r.d.used(),
        vec![(0, 0), (1, 0), (2, 0), (4, 0), (5, 0)],
        "every chain went back, with nothing written"
    );
    assert!(!r.irq.needs_reset());
    // The device still works: header and frame in two buffers.
    r.send(7, &[(FRAME, 12, false), (FRAME + 12, len - 12, false)]);
    let got = r.received().expect("a frame on the tap");
    assert_eq!(got.len(), len as usize);
    assert_eq!(&got[12..], &eth(60)[..]);
    assert_eq!(r.d.used().last(), Some(&(7, 0)));
    assert_ne!(r.irq.status() & VIRTIO_MMIO_INT_VRING, 0);
}

#[test]
fn a_broken_tx_ring_asks_for_a_reset() {
    let mut r = Rig::new(None, None);
    // The available index jumps more than a queue ahead.
    r.d.set_avail_idx(100);
    r.net.process_tx();
    assert!(r.irq.needs_reset());
    assert_eq!(r.received(), None);
}

#[test]
fn rx_waits_for_buffers_and_skips_hostile_ones() {
    let mut r = Rig::new(None, None);
    let sent = r.inject(&eth(80));
    r.net.process_rx();
    assert_eq!(r.net.pending_rx(), Some(&sent[..]), "no buffer yet");
    assert!(!r.net.wants_tap(), "the tap rests while a frame waits");
    // A loop and a buffer outside memory: returned empty, the frame waits on.
    r.d.desc_at(RX_DESC, 0, BUF, 200, WRITE | NEXT, 0);
    r.publish_rx(0);
    r.give_rx(1, &[(0x7fff_0000_0000, 200, true)]);
    assert_eq!(r.rx_used(), vec![(0, 0), (1, 0)]);
    assert!(r.net.pending_rx().is_some());
    // A good buffer takes it.
    r.give_rx(2, &[(BUF, 2048, true)]);
    assert_eq!(r.rx_used().last(), Some(&(2, 92)));
    assert!(r.net.pending_rx().is_none());
    assert!(r.net.wants_tap());
    let mut got = vec![0u8; 92];
    r.d.mem
        .read_slice(&mut got, GuestAddress(BUF))
        .expect("read");
    assert_eq!(&got[10..12], &[1, 0]);
    assert_eq!(&got[12..], &eth(80)[..]);
    assert_ne!(r.irq.status() & VIRTIO_MMIO_INT_VRING, 0);
}

#[test]
fn a_frame_too_big_for_its_buffer_is_dropped_not_truncated() {
    let mut r = Rig::new(None, None);
    r.inject(&eth(1500));
    r.give_rx(0, &[(BUF, 1000, true)]);
    assert_eq!(r.rx_used(), vec![(0, 0)]);
    assert!(r.net.pending_rx().is_none(), "dropped");
    assert_eq!(r.d.mem.read_obj::<u8>(GuestAddress(BUF)).expect("r"), 0);
    // A readable RX buffer: the same.
    r.inject(&eth(60));
    r.give_rx(1, &[(BUF, 2048, false)]);
    assert_eq!(r.rx_used().last(), Some(&(1, 0)));
    // The next frame and buffer work.
    r.inject(&eth(60));
    r.give_rx(2, &[(BUF, 2048, true)]);
    assert_eq!(r.rx_used().last(), Some(&(2, 72)));
}

#[test]
fn rate_limiters_hold_frames_back_in_both_directions() {
    // One frame per minute each way.
    let mut r = Rig::new(Some(1), Some(1));
    let len = r.frame(&eth(60));
    r.send(0, &[(FRAME, len, false)]);
    r.send(1, &[(FRAME, len, false)]);
    assert!(r.received().is_some(), "the first frame goes");
    assert_eq!(r.received(), None, "the second waits for the limiter");
    assert_eq!(r.d.used(), vec![(0, 0)], "and stays on the queue");

    r.give_rx(0, &[(BUF, 2048, true)]);
    r.give_rx(1, &[(BUF + 0x1000, 2048, true)]);
    r.inject(&eth(60));
    r.net.process_rx();
    r.inject(&eth(61));
    r.net.process_rx();
    assert_eq!(r.rx_used(), vec![(0, 72)]);
    assert_eq!(r.net.pending_rx().map(<[u8]>::len), Some(73), "held back");
    assert!(!r.net.wants_tap());
}

#[test]
fn features_config_space_and_offloads() {
    let bit = |b: u32| 1u64 << b;
    assert_eq!(
        features(true) & bit(VIRTIO_NET_F_MAC),
        bit(VIRTIO_NET_F_MAC)
    );
    assert_eq!(features(false) & bit(VIRTIO_NET_F_MAC), 0);
    assert_eq!(features(false) & bit(VIRTIO_NET_F_MRG_RXBUF), 0);
    let c = config_space(Some([6, 0, 10, 0, 2, 15]));
    assert_eq!(c, vec![6, 0, 10, 0, 2, 15, 1, 0, 1, 0]);
    assert_eq!(&config_space(None)[..6], &[0; 6]);
    assert_eq!(tap_offload(VIRTIO_F_VERSION_1), 0);
    // Segmentation without checksum offload is not passed on.
    assert_eq!(tap_offload(bit(VIRTIO_NET_F_GUEST_TSO4)), 0);
    assert_eq!(
        tap_offload(bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_GUEST_TSO4)),
        libc::TUN_F_CSUM | libc::TUN_F_TSO4
    );
}

#[test]
fn a_missing_tap_is_named() {
    let config = NetConfig {
        iface_id: "eth0".into(),
        host_dev_name: "vsslnotap9".into(),
        guest_mac: None,
        rx_rate_limiter: None,
        tx_rate_limiter: None,
    };
    let e = check_host(&config).expect_err("no such tap");
    let chain = vessel_testkit::error_chain(&e);
    assert!(
        chain.contains("\"eth0\"")
            && chain.contains("\"vsslnotap9\"")
            && chain.contains("does not exist"),
        "{chain}"
    );
}

#[test]
fn new_limits_from_the_handle_release_what_the_old_ones_held() {
    let mut r = Rig::new(Some(1), Some(1));
    let len = r.frame(&eth(60));
    r.send(0, &[(FRAME, len, false)]);
    r.send(1, &[(FRAME, len, false)]);
    r.give_rx(0, &[(BUF, 2048, true)]);
    r.give_rx(1, &[(BUF + 0x1000, 2048, true)]);
    r.inject(&eth(60));
    r.net.process_rx();
    r.inject(&eth(60));
    r.net.process_rx();
    assert!(r.received().is_some());
    assert_eq!(
        (r.d.used().len(), r.rx_used().len()),
        (1, 1),
        "one each way"
    );
    assert_eq!(r.handle.iface_id(), "eth0");
    // PATCH: TX unlimited, RX 100 frames a minute.
    r.handle.set_limits(Limits {
        rx: Some(per_minute(100)),
        tx: None,
    });
    r.net.apply_limits(None);
    assert!(r.received().is_some(), "the held TX chain went");
    assert_eq!(r.d.used(), vec![(0, 0), (1, 0)]);
    assert_eq!(r.rx_used(), vec![(0, 72), (1, 72)], "the held frame went");
    assert!(r.net.wants_tap());
    // Nothing pending: nothing changes.
    r.net.apply_limits(None);
    assert!(r.net.pending_rx().is_none());
}

#[test]
fn a_patch_replaces_the_buckets_it_names() {
    let bucket = |size| TokenBucketConfig {
        size,
        one_time_burst: None,
        refill_time: 100,
    };
    let both = RateLimiterConfig {
        bandwidth: Some(bucket(1000)),
        ops: Some(bucket(10)),
    };
    assert_eq!(patched(Some(both), None), Some(both), "no patch");
    let ops_only = RateLimiterConfig {
        bandwidth: None,
        ops: Some(bucket(20)),
    };
    assert_eq!(
        patched(Some(both), Some(ops_only)),
        Some(RateLimiterConfig {
            bandwidth: Some(bucket(1000)),
            ops: Some(bucket(20)),
        })
    );
    // Size 0 removes a bucket; removing both removes the limiter.
    let off = RateLimiterConfig {
        bandwidth: Some(bucket(0)),
        ops: Some(bucket(0)),
    };
    assert_eq!(patched(Some(both), Some(off)), None);
    assert_eq!(patched(None, Some(ops_only)), Some(ops_only));
}
