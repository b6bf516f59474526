//! A hostile virtio-vsock driver's TX queue: the fuzz input is the guest's
//! memory and its queue (layout: `common/mod.rs`); every chain is checked
//! and parsed as a vsock packet (`vsock::packet::parse`: header, length,
//! type, CIDs, payload) as the device thread does before acting on it, and
//! returned. Must never panic nor touch memory outside the guest's.
#![no_main]

use vessel_vmm::devices::virtio::interrupt::{Interrupt, IrqLine};
use vessel_vmm::devices::virtio::queue::{serve, Served};
use vessel_vmm::devices::virtio::vsock::packet::{self, op, Header, HOST_CID};

mod common;
use common::hostile_queue;

/// The guest's CID: 3, or (odd selectors) one the input chooses.
fn guest_cid(selector: u8) -> u64 {
    if selector & 1 == 1 {
        u64::from(selector >> 1)
    } else {
        3
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(h) = hostile_queue(data) else { return };
    let (mem, mut queue, selector) = (h.mem, h.queue, h.selector);
    let irq = Interrupt::new(IrqLine::None);
    let cid = guest_cid(selector);
    serve(&mut queue, &mem, &irq, |chain| {
        match packet::parse(chain, &mem, cid) {
            Ok(p) => {
                // What parse accepted is what the muxer relies on.
                assert_eq!((p.header.src_cid, p.header.dst_cid), (cid, HOST_CID));
                let payload = if p.header.op == op::RW {
                    p.header.len
                } else {
                    0
                };
                assert_eq!(p.payload.len(), payload as usize);
            }
            // A RST answers with the refused header's ports: it must
            // survive the wire form.
            Err(r) => {
                if let Some(h) = r.header {
                    assert_eq!(Header::decode(&h.encode()), h);
                }
            }
        }
        Served::Done(0)
    });
});
