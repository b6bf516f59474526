//! Hostile queues: the driver's rings written by hand into guest memory.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::devices::virtio::interrupt::{Interrupt, IrqLine};

pub(crate) const DESC: u64 = 0x1000;
pub(crate) const AVAIL: u64 = 0x2000;
pub(crate) const USED: u64 = 0x3000;
pub(crate) const SIZE: u16 = 16;
pub(crate) const NEXT: u16 = 1;
pub(crate) const WRITE: u16 = 2;
pub(crate) const INDIRECT: u16 = 4;

/// A driver writing rings into 1 MiB of guest memory.
pub(crate) struct Driver {
    pub mem: GuestMemoryMmap,
    pub queue: Queue,
    avail_idx: u16,
}

impl Driver {
    pub fn new() -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("memory");
        let mut queue = Queue::new(SIZE).expect("queue");
        queue.set_size(SIZE);
        queue.set_desc_table_address(Some(DESC as u32), Some(0));
        queue.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        queue.set_used_ring_address(Some(USED as u32), Some(0));
        queue.set_ready(true);
        assert!(queue.is_valid(&mem));
        Driver {
            mem,
            queue,
            avail_idx: 0,
        }
    }

    /// Writes descriptor `i` of the table at `table`.
    pub fn desc_at(&self, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(table + 16 * u64::from(i));
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&d, at).expect("descriptor");
    }

    pub fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.desc_at(DESC, i, addr, len, flags, next);
    }

    /// A chain of `bufs` (addr, len, writable) at descriptors from `first`.
    pub fn chain(&self, first: u16, bufs: &[(u64, u32, bool)]) {
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = first + k as u16;
            let more = k + 1 < bufs.len();
            let flags = if more { NEXT } else { 0 } | if w { WRITE } else { 0 };
            self.desc(i, addr, len, flags, i + 1);
        }
    }

    /// Makes head `head` available.
    pub fn publish(&mut self, head: u16) {
        let slot = GuestAddress(AVAIL + 4 + 2 * u64::from(self.avail_idx % SIZE));
        self.mem.write_obj(head, slot).expect("ring");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(self.avail_idx);
    }

    pub fn set_avail_idx(&self, idx: u16) {
        self.mem
            .write_obj(idx, GuestAddress(AVAIL + 2))
            .expect("idx");
    }

    /// The used ring entries so far: (id, len).
    pub fn used(&self) -> Vec<(u32, u32)> {
        let idx: u16 = self.mem.read_obj(GuestAddress(USED + 2)).expect("used idx");
        (0..idx)
            .map(|i| {
                let at = USED + 4 + 8 * u64::from(i % SIZE);
                (
                    self.mem.read_obj(GuestAddress(at)).expect("id"),
                    self.mem.read_obj(GuestAddress(at + 4)).expect("len"),
                )
            })
            .collect()
    }

    pub fn pop(&mut self) -> Result<Option<Popped>, QueueError> {
        pop(&mut self.queue, &self.mem)
    }
}

pub(crate) fn interrupt() -> Arc<Interrupt> {
    Arc::new(Interrupt::new(IrqLine::None))
}

fn bad(p: Option<Popped>) -> ChainError {
    match p {
        Some(Popped::Bad(b)) => b.error,
        other => panic!("expected a bad chain, got {other:?}"),
    }
}

#[test]
fn a_good_chain_reads_and_writes_across_buffers() {
    let mut d = Driver::new();
    d.mem
        .write_slice(b"hello ", GuestAddress(0x10000))
        .expect("w");
    d.mem
        .write_slice(b"world", GuestAddress(0x20000))
        .expect("w");
    d.chain(
        0,
        &[
            (0x10000, 6, false),
            (0x20000, 5, false),
            (0x30000, 4, true),
            (0x40000, 4, true),
        ],
    );
    d.publish(0);
    let Ok(Some(Popped::Chain(c))) = d.pop() else {
        panic!("no chain");
    };
    assert_eq!((c.readable_len(), c.writable_len()), (11, 8));
    let mut buf = [0u8; 20];
    assert_eq!(c.read_at(&d.mem, 3, &mut buf), 8);
    assert_eq!(&buf[..8], b"lo world");
    assert_eq!(c.write_at(&d.mem, 2, b"abcdefgh"), 6);
    let mut out = [0u8; 4];
    d.mem
        .read_slice(&mut out, GuestAddress(0x40000))
        .expect("r");
    assert_eq!(&out, b"cdef");
    assert_eq!(d.pop().expect("queue").map(|_| ()), None);
}

#[test]
fn loops_bad_indices_and_nested_indirect_tables_are_malformed() {
    let mut d = Driver::new();
    // 0 -> 1 -> 0 -> …
    d.desc(0, 0x10000, 8, NEXT, 1);
    d.desc(1, 0x10000, 8, NEXT, 0);
    d.publish(0);
    assert_eq!(bad(d.pop().expect("q")), ChainError::Malformed);
    // next past the table
    d.desc(2, 0x10000, 8, NEXT, SIZE + 5);
    d.publish(2);
    assert_eq!(bad(d.pop().expect("q")), ChainError::Malformed);
    // an indirect table whose entry is itself indirect
    d.desc(3, 0x50000, 32, INDIRECT, 0);
    d.desc_at(0x50000, 0, 0x50000, 32, INDIRECT, 0);
    d.publish(3);
    assert_eq!(bad(d.pop().expect("q")), ChainError::Malformed);
    // a head index past the table
    d.publish(SIZE + 1);
    assert_eq!(bad(d.pop().expect("q")), ChainError::Malformed);
}

#[test]
fn out_of_memory_overflowing_and_misordered_buffers_are_refused() {
    let mut d = Driver::new();
    d.chain(0, &[(0xff000, 0x2000, false)]);
    d.publish(0);
    assert!(matches!(
        bad(d.pop().expect("q")),
        ChainError::OutOfMemory { .. }
    ));
    d.chain(1, &[(u64::MAX - 4, 16, true)]);
    d.publish(1);
    assert!(matches!(
        bad(d.pop().expect("q")),
        ChainError::OutOfMemory { .. }
    ));
    // Lengths summing past 4 GiB stop the crate's iterator: malformed.
    d.chain(2, &[(0x1000, u32::MAX, false), (0x1000, u32::MAX, false)]);
    d.publish(2);
    assert!(matches!(
        bad(d.pop().expect("q")),
        ChainError::Malformed | ChainError::OutOfMemory { .. }
    ));
    d.chain(4, &[(0x10000, 8, true), (0x20000, 8, false)]);
    d.publish(4);
    assert_eq!(bad(d.pop().expect("q")), ChainError::Order);
}

#[test]
fn an_indirect_table_longer_than_the_cap_is_too_long() {
    let mut d = Driver::new();
    let table = 0x60000;
    let n = MAX_SEGMENTS as u16 + 1;
    for i in 0..n {
        d.desc_at(table, i, 0x10000, 1, NEXT, i + 1);
    }
    d.desc_at(table, n - 1, 0x10000, 1, 0, 0);
    d.desc(0, table, u32::from(n) * 16, INDIRECT, 0);
    d.publish(0);
    assert_eq!(bad(d.pop().expect("q")), ChainError::TooLong);
}

#[test]
fn an_avail_index_too_far_ahead_breaks_the_queue() {
    let mut d = Driver::new();
    d.set_avail_idx(SIZE + 1);
    assert!(matches!(d.pop(), Err(QueueError::AvailIndex { .. })));
    let irq = interrupt();
    assert!(!serve(&mut d.queue, &d.mem, &irq, |_| Served::Done(0)));
    assert!(irq.needs_reset());
}

#[test]
fn serve_returns_bad_chains_empty_and_stops_when_asked() {
    let mut d = Driver::new();
    d.desc(0, 0x10000, 8, NEXT, 0); // a loop
    d.publish(0);
    d.chain(1, &[(0x10000, 8, true)]);
    d.publish(1);
    d.chain(2, &[(0x10000, 8, true)]);
    d.publish(2);
    let irq = interrupt();
    let mut seen = Vec::new();
    assert!(serve(&mut d.queue, &d.mem, &irq, |c| {
        seen.push(c.head);
        if c.head == 2 {
            Served::Later
        } else {
            Served::Done(8)
        }
    }));
    assert_eq!(seen, vec![1, 2]);
    assert_eq!(d.used(), vec![(0, 0), (1, 8)]);
    assert_eq!(irq.status(), 1);
    // Chain 2 is still there.
    assert!(serve(&mut d.queue, &d.mem, &irq, |_| Served::Done(3)));
    assert_eq!(d.used(), vec![(0, 0), (1, 8), (2, 3)]);
}
