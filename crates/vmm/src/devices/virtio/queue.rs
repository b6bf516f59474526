//! Taking requests off a virtqueue the guest controls, without trusting it.
//!
//! The rust-vmm `virtio-queue` crate walks the rings; its descriptor
//! iterator stops quietly on a loop (its time-to-live runs out), an index
//! past the table, a nested indirect table or a total length that
//! overflows. [`Chain::parse`] turns such a quiet stop into an error (a
//! well-formed chain ends on a descriptor without `NEXT`) and checks what
//! the crate leaves to the device: every buffer lies inside guest memory,
//! device-writable buffers come after readable ones, and a chain has at
//! most [`MAX_SEGMENTS`] buffers. Devices then copy through
//! [`Chain::read_at`]/[`Chain::write_at`], which go through vm-memory's
//! bounds-checked accessors only.

use std::num::Wrapping;
use std::sync::atomic::Ordering;

use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::interrupt::Interrupt;

/// Most buffers vessel accepts in one chain (Linux uses at most a few
/// dozen; the queue size bounds a direct chain, this bounds indirect ones).
pub const MAX_SEGMENTS: usize = 1024;

/// Why a chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain does not end: a loop, a `next` past the table, a nested
    /// indirect table, or a total length past 4 GiB.
    #[error(
        "Malformed descriptor chain (loop, bad index, nested indirect table or length overflow)"
    )]
    Malformed,
    /// More than [`MAX_SEGMENTS`] buffers.
    #[error("Descriptor chain of more than {MAX_SEGMENTS} buffers")]
    TooLong,
    /// A buffer outside guest memory.
    #[error("Descriptor buffer {addr:#x}+{len:#x} is outside guest memory")]
    OutOfMemory {
        /// Guest address of the buffer.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// A readable buffer after a writable one.
    #[error("Device-readable buffer after a device-writable one")]
    Order,
}

/// Errors of a whole queue (the device needs a reset).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The available index is more than a queue size ahead.
    #[error(
        "The driver's available index is {ahead} entries ahead of the device on a queue of {size}"
    )]
    AvailIndex {
        /// How far ahead.
        ahead: u16,
        /// Queue size.
        size: u16,
    },
    /// The rings cannot be read or written.
    #[error("Cannot access the virtqueue rings")]
    Rings(#[source] virtio_queue::Error),
}

/// One guest buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// A validated descriptor chain: what the driver gave, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// Head index, to return the chain to the used ring.
    pub head: u16,
    /// Buffers the device reads (the request).
    pub readable: Vec<Segment>,
    /// Buffers the device writes (the answer).
    pub writable: Vec<Segment>,
}

/// A chain the device refused; it still goes back to the used ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChain {
    /// Head index.
    pub head: u16,
    /// Why.
    pub error: ChainError,
}

impl Chain {
    /// Validates the chain `desc` starts.
    pub fn parse(
        desc: DescriptorChain<&GuestMemoryMmap>,
        mem: &GuestMemoryMmap,
    ) -> Result<Chain, BadChain> {
        let head = desc.head_index();
        let bad = |error| BadChain { head, error };
        let mut chain = Chain {
            head,
            ..Chain::default()
        };
        let mut ended = false;
        let mut count = 0usize;
        for d in desc {
            count += 1;
            if count > MAX_SEGMENTS {
                return Err(bad(ChainError::TooLong));
            }
            let len = usize::try_from(d.len()).unwrap_or(usize::MAX);
            if d.len() > 0 && !mem.check_range(d.addr(), len) {
                return Err(bad(ChainError::OutOfMemory {
                    addr: d.addr().0,
                    len: d.len(),
                }));
            }
            let seg = Segment {
                addr: d.addr(),
                len: d.len(),
            };
            if d.is_write_only() {
                chain.writable.push(seg);
            } else if chain.writable.is_empty() {
                chain.readable.push(seg);
            } else {
                return Err(bad(ChainError::Order));
            }
            ended = !d.has_next();
        }
        if !ended {
            return Err(bad(ChainError::Malformed));
        }
        Ok(chain)
    }

    /// Bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|s| u64::from(s.len)).sum()
    }

    /// Bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.len)).sum()
    }

    /// Reads readable bytes from `offset` into `buf`; returns how many
    /// (fewer at the end of the readable part).
    pub fn read_at(&self, mem: &GuestMemoryMmap, offset: u64, buf: &mut [u8]) -> usize {
        copy(&self.readable, offset, buf.len(), |addr, at, n| {
            mem.read_slice(&mut buf[at..at + n], addr).is_ok()
        })
    }

    /// Writes `buf` into the writable buffers from `offset`; returns how
    /// many bytes fit.
    pub fn write_at(&self, mem: &GuestMemoryMmap, offset: u64, buf: &[u8]) -> usize {
        copy(&self.writable, offset, buf.len(), |addr, at, n| {
            mem.write_slice(&buf[at..at + n], addr).is_ok()
        })
    }
}

/// Walks `segs` from byte `offset` for `len` bytes, calling `f(addr,
/// buf_offset, n)` per piece; stops at the end or on a failed access.
fn copy(
    segs: &[Segment],
    mut offset: u64,
    len: usize,
    mut f: impl FnMut(GuestAddress, usize, usize) -> bool,
) -> usize {
    let mut done = 0usize;
    for seg in segs {
        if done == len {
            break;
        }
        let seg_len = u64::from(seg.len);
        if offset >= seg_len {
            offset -= seg_len;
            continue;
        }
        let avail = usize::try_from(seg_len - offset).unwrap_or(usize::MAX);
        let n = avail.min(len - done);
        // In guest memory: Chain::parse checked the whole segment.
        let addr = GuestAddress(seg.addr.0 + offset);
        if !f(addr, done, n) {
            break;
        }
        done += n;
        offset = 0;
    }
    done
}

/// What [`pop`] found.
#[derive(Debug)]
pub enum Popped {
    /// A valid chain.
    Chain(Chain),
    /// A chain to give back unprocessed (with a length of 0).
    Bad(BadChain),
}

/// Takes the next chain the driver made available, if any.
pub fn pop(queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<Option<Popped>, QueueError> {
    let avail = queue
        .avail_idx(mem, Ordering::Acquire)
        .map_err(QueueError::Rings)?;
    let ahead = (avail - Wrapping(queue.next_avail())).0;
    if ahead == 0 {
        return Ok(None);
    }
    if ahead > queue.size() {
        return Err(QueueError::AvailIndex {
            ahead,
            size: queue.size(),
        });
    }
    let mut iter = queue.iter(mem).map_err(QueueError::Rings)?;
    let Some(desc) = iter.next() else {
        return Ok(None);
    };
    Ok(Some(match Chain::parse(desc, mem) {
        Ok(c) => Popped::Chain(c),
        Err(b) => Popped::Bad(b),
    }))
}

/// Puts a chain back at the head of the available ring (a rate limiter
/// said "not yet").
pub fn unpop(queue: &mut Queue) {
    queue.go_to_previous_position();
}

/// Returns `head` to the used ring with `len` bytes written; whether the
/// driver wants an interrupt for it.
pub fn complete(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
    head: u16,
    len: u32,
) -> Result<bool, QueueError> {
    queue.add_used(mem, head, len).map_err(QueueError::Rings)?;
    queue.needs_notification(mem).map_err(QueueError::Rings)
}

/// What a device did with a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Done: return it with this many bytes written.
    Done(u32),
    /// Not now (a rate limiter): leave it, and every chain after it, for later.
    Later,
}

/// Serves every chain available on `queue` with `handle`, returns them to
/// the used ring, and interrupts the guest when it asked for that. A chain
/// that fails validation goes back with 0 bytes written, unseen by
/// `handle`. A queue whose rings are broken marks the device as needing a
/// reset; the return value says so (`false`).
pub fn serve(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
    interrupt: &Interrupt,
    mut handle: impl FnMut(&Chain) -> Served,
) -> bool {
    let mut notify = false;
    let healthy = loop {
        let (head, len) = match pop(queue, mem) {
            Ok(None) => break true,
            Err(_) => break false,
            Ok(Some(Popped::Bad(bad))) => (bad.head, 0),
            Ok(Some(Popped::Chain(chain))) => match handle(&chain) {
                Served::Done(len) => (chain.head, len),
                Served::Later => {
                    unpop(queue);
                    break true;
                }
            },
        };
        match complete(queue, mem, head, len) {
            Ok(n) => notify |= n,
            Err(_) => break false,
        }
    };
    if !healthy {
        interrupt.set_needs_reset();
    } else if notify {
        interrupt.signal_used_queue();
    }
    healthy
}

#[cfg(test)]
pub(crate) mod tests;
