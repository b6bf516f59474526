//! What the virtio fuzz targets share: a hostile driver's queue. The fuzz
//! input's first 4 bytes choose the queue size (byte 0), its next
//! available index (bytes 1-2) and a device-specific selector (byte 3);
//! the rest is the guest's memory (rings, descriptors, buffers), with the
//! descriptor table at 0, the available ring at 0x4000 and the used ring
//! at 0x8000.

#![allow(dead_code)]

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The guest's memory.
pub const MEM: usize = 64 << 10;
/// Where the rings end: devices may take more bytes from the guest's
/// memory past this point (a frame, say).
pub const RINGS_END: u64 = 0x9000;

/// A queue a hostile driver set up.
pub struct HostileQueue {
    pub mem: GuestMemoryMmap,
    pub queue: Queue,
    /// Byte 3 of the input.
    pub selector: u8,
}

/// The queue and memory of `data`; `None` for an input too short or a
/// queue the transport would not accept.
pub fn hostile_queue(data: &[u8]) -> Option<HostileQueue> {
    if data.len() < 4 {
        return None;
    }
    let (head, body) = data.split_at(4);
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM)]).ok()?;
    let n = body.len().min(MEM);
    mem.write_slice(&body[..n], GuestAddress(0)).ok()?;
    let size = 1u16 << (head[0] % 9); // 1..=256
    let mut queue = Queue::new(256).ok()?;
    queue.set_size(size);
    queue.set_desc_table_address(Some(0), Some(0));
    queue.set_avail_ring_address(Some(0x4000), Some(0));
    queue.set_used_ring_address(Some(0x8000), Some(0));
    queue.set_next_avail(u16::from_le_bytes([head[1], head[2]]));
    queue.set_ready(true);
    // The transport refuses DRIVER_OK with rings outside memory.
    if !queue.is_valid(&mem) {
        return None;
    }
    Some(HostileQueue {
        mem,
        queue,
        selector: head[3],
    })
}

/// A queue the driver never made ready, for a device's other slots.
pub fn unready() -> Queue {
    Queue::new(256).expect("a valid size")
}
