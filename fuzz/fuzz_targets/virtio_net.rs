//! A hostile virtio-net driver: the fuzz input is the guest's memory and
//! its queue (layout: `common/mod.rs`). An even selector makes it the TX
//! queue: every chain is checked and its frame written to the "tap" (one
//! end of a datagram socket pair, as the unit tests use). An odd one makes
//! it the RX queue: 1 to 4 frames (lengths from the four `le16` at 0x8ff0,
//! bytes from 0x9000 of the input's memory, zero past its end) wait on the
//! tap and are written into the guest's buffers. Must never panic, hang
//! nor touch memory outside the guest's.
#![no_main]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use vessel_vmm::devices::virtio::interrupt::{Interrupt, IrqLine};
use vessel_vmm::devices::virtio::net::device::NetBackend;
use vessel_vmm::devices::virtio::net::frame::MAX_BUFFER_LEN;
use vessel_vmm::devices::virtio::net::handle::Limits;
use vessel_vmm::devices::virtio::net::tap::Tap;
use vessel_vmm::devices::virtio::worker::Activation;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

mod common;
use common::{hostile_queue, unready, MEM, RINGS_END};

const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Where the RX frames' lengths are.
const FRAME_LENS: u64 = RINGS_END - 0x10;

/// Frame `i` the host's side of the tap sends, from the guest's memory.
fn frame(mem: &GuestMemoryMmap, i: u64) -> Vec<u8> {
    let len: u16 = mem
        .read_obj(GuestAddress(FRAME_LENS + 2 * i))
        .unwrap_or_default();
    // Up to a little past the largest frame a tap gives (a longer datagram
    // is cut to the device's buffer, as a tap read would be).
    let len = usize::from(len) % (MAX_BUFFER_LEN + 64);
    let mut f = vec![0u8; len];
    let present = (MEM - RINGS_END as usize).min(len);
    let _ = mem.read_slice(&mut f[..present], GuestAddress(RINGS_END));
    f
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(h) = hostile_queue(data) else { return };
    let (mem, queue, selector) = (h.mem, h.queue, h.selector);
    let Ok((ours, peer)) = UnixDatagram::pair() else {
        return;
    };
    if ours.set_nonblocking(true).is_err() || peer.set_nonblocking(true).is_err() {
        return;
    }
    let tap = Tap::from_file(File::from(OwnedFd::from(ours)), "fuzz0");
    let irq = Arc::new(Interrupt::new(IrqLine::None));
    let Ok((mut net, _handle)) = NetBackend::new("eth0", tap, irq, Limits::default()) else {
        return;
    };
    let rx_turn = selector & 1 == 1;
    let queues = if rx_turn {
        vec![queue, unready()]
    } else {
        vec![unready(), queue]
    };
    net.start(Activation {
        mem: mem.clone(),
        queues,
        features: VIRTIO_F_VERSION_1,
    });
    if rx_turn {
        for i in 0..=u64::from(selector >> 1 & 3) {
            let _ = peer.send(&frame(&mem, i));
        }
        net.process_rx();
        // A frame left waiting for a buffer is tried again.
        net.process_rx();
    } else {
        net.process_tx();
    }
});
