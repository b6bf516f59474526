//! The virtio-mmio transport, version 2 (virtio 1.x "modern" registers):
//! the page of registers a guest driver finds at the address the kernel
//! command line announces (`virtio_mmio.device=4K@ADDR:IRQ`).
//!
//! It runs on the vCPU thread that took the MMIO exit and does no I/O:
//! feature negotiation, queue setup and status live here; on `DRIVER_OK`
//! the queues are handed to the device thread ([`super::worker`]). A write
//! to `QueueNotify` only reaches this code when KVM has no ioeventfd for
//! it (the fallback), and then signals the same eventfd KVM would have.

use std::sync::Arc;

use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
};
use virtio_bindings::virtio_mmio::*;
use virtio_queue::{Queue, QueueState, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::interrupt::Interrupt;
use super::worker::{Activation, Command, WorkerHandle, WorkerReport};
use super::{ConfigSpace, VIRTIO_F_VERSION_1};
use crate::devices::bus::BusDevice;

/// "virt" in little endian.
pub const MMIO_MAGIC: u32 = 0x7472_6976;
/// The modern transport.
pub const MMIO_VERSION: u32 = 2;
/// Size of one device's register page.
pub const MMIO_LEN: u64 = 0x1000;
/// Vendor id the devices report ("VSSL").
pub const VENDOR_ID: u32 = 0x4c53_5356;

/// What a device is to the transport: its type, queues, features and
/// configuration space; the work happens on its thread.
#[derive(Debug)]
pub struct DeviceInfo {
    /// Virtio device id (`VIRTIO_ID_*`).
    pub device_type: u32,
    /// Maximum size of each queue.
    pub queue_sizes: Vec<u16>,
    /// Feature bits the device offers (with [`VIRTIO_F_VERSION_1`]).
    pub features: u64,
    /// The configuration space.
    pub config: Arc<ConfigSpace>,
}

/// One virtio-mmio device as the guest sees it.
#[derive(Debug)]
pub struct MmioTransport {
    info: DeviceInfo,
    mem: GuestMemoryMmap,
    interrupt: Arc<Interrupt>,
    worker: WorkerHandle,
    queue_events: Vec<EventFd>,
    queues: Vec<Queue>,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u32,
    activated: bool,
    /// The queues as handed to the device thread on `DRIVER_OK` (for a
    /// snapshot of a backend that does not report its own).
    handed_over: Vec<QueueState>,
    /// The device thread's report while it is paused for a snapshot.
    paused: Option<WorkerReport>,
}

impl MmioTransport {
    /// The transport of `info`, whose thread is `worker`, woken through
    /// `queue_events` (one per queue). Fails on a queue size that is not a
    /// power of two up to 32768.
    pub fn new(
        info: DeviceInfo,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        worker: WorkerHandle,
        queue_events: Vec<EventFd>,
    ) -> Result<Self, virtio_queue::Error> {
        let queues = new_queues(&info.queue_sizes)?;
        Ok(MmioTransport {
            info,
            mem,
            interrupt,
            worker,
            queue_events,
            queues,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            status: 0,
            activated: false,
            handed_over: Vec::new(),
            paused: None,
        })
    }

    /// The device's type.
    pub fn device_type(&self) -> u32 {
        self.info.device_type
    }

    /// The status register as the driver last wrote it.
    pub fn status(&self) -> u32 {
        self.status
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        // Queue registers are frozen once the device runs.
        if self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0 {
            return None;
        }
        self.queues.get_mut(usize::try_from(self.queue_sel).ok()?)
    }

    fn read_reg(&self, offset: u32) -> u32 {
        let sel = |v: u64, s: u32| match s {
            0 => v as u32,
            1 => (v >> 32) as u32,
            _ => 0,
        };
        let queue = usize::try_from(self.queue_sel)
            .ok()
            .and_then(|i| self.queues.get(i));
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => MMIO_MAGIC,
            VIRTIO_MMIO_VERSION => MMIO_VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.info.device_type,
            VIRTIO_MMIO_VENDOR_ID => VENDOR_ID,
            VIRTIO_MMIO_DEVICE_FEATURES => sel(self.info.features, self.device_features_sel),
            VIRTIO_MMIO_QUEUE_NUM_MAX => usize::try_from(self.queue_sel)
                .ok()
                .and_then(|i| self.info.queue_sizes.get(i))
                .map_or(0, |&max| u32::from(max)),
            // The device thread owns the queues once it runs.
            VIRTIO_MMIO_QUEUE_READY => {
                queue.map_or(u32::from(self.activated), |q| u32::from(q.ready()))
            }
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            VIRTIO_MMIO_STATUS => {
                let reset = if self.interrupt.needs_reset() {
                    VIRTIO_CONFIG_S_NEEDS_RESET
                } else {
                    0
                };
                self.status | reset
            }
            VIRTIO_MMIO_CONFIG_GENERATION => self.info.config.generation(),
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u32, v: u32) {
        let set_half = |old: u64, sel: u32, v: u32| match sel {
            0 => (old & !0xffff_ffff) | u64::from(v),
            1 => (old & 0xffff_ffff) | (u64::from(v) << 32),
            _ => old,
        };
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES if self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0 => {
                self.driver_features = set_half(self.driver_features, self.driver_features_sel, v);
            }
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NUM => {
                if let (Some(q), Ok(n)) = (self.queue(), u16::try_from(v)) {
                    q.set_size(n);
                }
            }
            VIRTIO_MMIO_QUEUE_READY => {
                if let Some(q) = self.queue() {
                    q.set_ready(v == 1);
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW => {
                self.with_queue(|q| q.set_desc_table_address(Some(v), None))
            }
            VIRTIO_MMIO_QUEUE_DESC_HIGH => {
                self.with_queue(|q| q.set_desc_table_address(None, Some(v)))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => {
                self.with_queue(|q| q.set_avail_ring_address(Some(v), None))
            }
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => {
                self.with_queue(|q| q.set_avail_ring_address(None, Some(v)))
            }
            VIRTIO_MMIO_QUEUE_USED_LOW => {
                self.with_queue(|q| q.set_used_ring_address(Some(v), None))
            }
            VIRTIO_MMIO_QUEUE_USED_HIGH => {
                self.with_queue(|q| q.set_used_ring_address(None, Some(v)))
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => {
                // Reached only without an ioeventfd: wake the device thread
                // the way KVM would have.
                if let Some(evt) = usize::try_from(v)
                    .ok()
                    .and_then(|i| self.queue_events.get(i))
                {
                    let _ = evt.write(1);
                }
            }
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.ack(v),
            VIRTIO_MMIO_STATUS => self.set_status(v),
            _ => {}
        }
    }

    fn with_queue(&mut self, f: impl FnOnce(&mut Queue)) {
        if let Some(q) = self.queue() {
            f(q);
        }
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let added = v & !self.status;
        // The driver may only add bits (spec 3.1.1), in order.
        if v & self.status != self.status {
            return;
        }
        if added & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            let unknown = self.driver_features & !self.info.features;
            if unknown != 0 || self.driver_features & VIRTIO_F_VERSION_1 == 0 {
                // Leave FEATURES_OK clear: the driver reads it back and
                // gives up on the device (legacy drivers are not served).
                self.status = v & !VIRTIO_CONFIG_S_FEATURES_OK;
                return;
            }
        }
        if added & VIRTIO_CONFIG_S_DRIVER_OK != 0 && !self.activated {
            let wanted =
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
            let queues_ok = self
                .queues
                .iter()
                .all(|q| !q.ready() || q.is_valid(&self.mem));
            if v & wanted != wanted || !queues_ok {
                self.status = v & !VIRTIO_CONFIG_S_DRIVER_OK;
                self.interrupt.set_needs_reset();
                return;
            }
            self.activated = true;
            self.handed_over = self.queues.iter().map(Queue::state).collect();
            self.worker.send(Command::Activate(Activation {
                mem: self.mem.clone(),
                queues: std::mem::take(&mut self.queues),
                features: self.driver_features,
            }));
        }
        if added & VIRTIO_CONFIG_S_FAILED != 0 && self.activated {
            self.worker.send(Command::Reset);
            self.activated = false;
        }
        self.status = v;
    }

    fn reset(&mut self) {
        if self.activated {
            self.worker.send(Command::Reset);
            self.activated = false;
        }
        self.queues = new_queues(&self.info.queue_sizes).unwrap_or_default();
        self.handed_over.clear();
        self.interrupt.reset();
        self.status = 0;
        self.driver_features = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
    }
}

/// Fresh queues of these maximum sizes (each a power of two up to 32768).
fn new_queues(sizes: &[u16]) -> Result<Vec<Queue>, virtio_queue::Error> {
    sizes.iter().map(|&max| Queue::new(max)).collect()
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            self.info
                .config
                .read(offset - u64::from(VIRTIO_MMIO_CONFIG), data);
            return;
        }
        // Registers are 32-bit and aligned; anything else reads as zero.
        let value = match (data.len(), u32::try_from(offset)) {
            (4, Ok(off)) if off % 4 == 0 => self.read_reg(off),
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(4);
        data[..n].copy_from_slice(&bytes[..n]);
        data[n..].fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            self.info
                .config
                .write(offset - u64::from(VIRTIO_MMIO_CONFIG), data);
            return;
        }
        if let (Ok(bytes), Ok(off)) = (<[u8; 4]>::try_from(data), u32::try_from(offset)) {
            if off % 4 == 0 {
                self.write_reg(off, u32::from_le_bytes(bytes));
            }
        }
    }
}

pub mod persist;
#[cfg(test)]
mod tests;
