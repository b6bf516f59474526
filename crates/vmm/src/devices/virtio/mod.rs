//! Paravirtualized devices: the virtio-mmio transport ([`mmio`]) and the
//! devices behind it — block ([`block`]), entropy ([`rng`]), vsock
//! ([`vsock`]), network ([`net`]) and balloon ([`balloon`]).
//!
//! Each device is two halves: a [`mmio::MmioTransport`] on the MMIO bus,
//! run by whichever vCPU thread the guest's access exits on, and a
//! [`worker::Backend`] on a thread of its own that owns the queues and the
//! host resources (file, tap, sockets) once the driver is ready. They share
//! the [`interrupt::Interrupt`] and the [`ConfigSpace`]. [`attach`] builds
//! them from the configuration. See docs/vmm.md, "Devices".

pub mod attach;
pub mod balloon;
pub mod block;
pub mod interrupt;
pub mod limited;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod rng;
pub mod vsock;
pub mod worker;

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

pub use attach::{attach, AttachError, VirtioDevices};

use crate::devices::bus::lock;

/// The device conforms to virtio 1.x (no legacy interface).
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// Queue size every vessel device offers.
pub const QUEUE_SIZE: u16 = 256;

/// A device's configuration space: read by the driver through the
/// transport, written by the device thread (and, for a few fields, the
/// driver).
#[derive(Debug)]
pub struct ConfigSpace {
    bytes: Mutex<Vec<u8>>,
    driver_writable: Range<usize>,
    generation: AtomicU32,
}

impl ConfigSpace {
    /// A configuration space of `bytes`, of which the driver may write
    /// `driver_writable`.
    pub fn new(bytes: Vec<u8>, driver_writable: Range<usize>) -> Self {
        ConfigSpace {
            bytes: Mutex::new(bytes),
            driver_writable,
            generation: AtomicU32::new(0),
        }
    }

    /// The driver reads; bytes past the end read as zero.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let bytes = lock(&self.bytes);
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if let Some(src) = bytes.get(start..) {
            let n = src.len().min(data.len());
            data[..n].copy_from_slice(&src[..n]);
        }
    }

    /// The driver writes; only inside the writable range, else ignored.
    pub fn write(&self, offset: u64, data: &[u8]) {
        let Some(range) = usize::try_from(offset)
            .ok()
            .and_then(|s| Some(s..s.checked_add(data.len())?))
        else {
            return;
        };
        if range.start >= self.driver_writable.start && range.end <= self.driver_writable.end {
            let mut bytes = lock(&self.bytes);
            if let Some(dst) = bytes.get_mut(range) {
                dst.copy_from_slice(data);
            }
        }
    }

    /// The device changes its configuration (the caller then signals a
    /// configuration change).
    pub fn update(&self, f: impl FnOnce(&mut [u8])) {
        f(&mut lock(&self.bytes));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A copy of the bytes.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.bytes).clone()
    }

    /// `ConfigGeneration`: changes whenever the device changed the space.
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_space_reads_pads_and_guards_writes() {
        let space = ConfigSpace::new(vec![1, 2, 3, 4, 5, 6, 7, 8], 4..8);
        let mut data = [0xffu8; 4];
        space.read(6, &mut data);
        assert_eq!(data, [7, 8, 0, 0]);
        space.read(u64::MAX, &mut data);
        assert_eq!(data, [0; 4]);
        space.write(0, &[9, 9]);
        space.write(6, &[9, 9, 9]);
        space.write(u64::MAX, &[9]);
        assert_eq!(space.bytes(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        space.write(4, &[9, 9, 9, 9]);
        assert_eq!(space.bytes(), vec![1, 2, 3, 4, 9, 9, 9, 9]);
        assert_eq!(space.generation(), 0);
        space.update(|b| b[0] = 0);
        assert_eq!(space.generation(), 1);
    }
}
