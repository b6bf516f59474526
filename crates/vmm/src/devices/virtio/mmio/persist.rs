//! The virtio-mmio transport in a snapshot: its registers, each queue's
//! configuration and positions, the interrupt status and the
//! configuration space.
//!
//! Once the driver said `DRIVER_OK` the queues belong to the device
//! thread, so a snapshot first pauses that thread between two events
//! ([`MmioTransport::pause_worker`]): a request being served is finished,
//! nothing moves until [`MmioTransport::resume_worker`], and the thread
//! reports its queues. A backend that does not report them returns each
//! chain to the used ring within the event that took it, so at that point
//! the used ring's index in guest memory is both positions.

use std::num::Wrapping;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK,
};
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};
use virtio_queue::{Queue, QueueState};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::{DeviceInfo, MmioTransport};
use crate::devices::bus::lock;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::worker::{Activation, Command, WorkerHandle};
use crate::devices::virtio::VIRTIO_F_VERSION_1;
use crate::snapshot::state::MmioDeviceState;
use crate::snapshot::Persist;

/// Status bits a driver may set (`DEVICE_NEEDS_RESET` is the device's).
const STATUS_BITS: u32 = VIRTIO_CONFIG_S_ACKNOWLEDGE
    | VIRTIO_CONFIG_S_DRIVER
    | VIRTIO_CONFIG_S_FEATURES_OK
    | VIRTIO_CONFIG_S_DRIVER_OK
    | VIRTIO_CONFIG_S_FAILED;

/// One split virtqueue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// The largest size the device offers.
    pub max_size: u16,
    /// The size the driver chose.
    pub size: u16,
    /// `QueueReady`.
    pub ready: bool,
    /// Descriptor table address.
    pub desc_table: u64,
    /// Available ring address.
    pub avail_ring: u64,
    /// Used ring address.
    pub used_ring: u64,
    /// The next available-ring entry the device will take.
    pub next_avail: u16,
    /// The next used-ring entry the device will fill.
    pub next_used: u16,
    /// `VIRTIO_F_RING_EVENT_IDX` is in use.
    pub event_idx: bool,
}

impl From<QueueState> for QueueSnapshot {
    fn from(q: QueueState) -> Self {
        QueueSnapshot {
            max_size: q.max_size,
            size: q.size,
            ready: q.ready,
            desc_table: q.desc_table,
            avail_ring: q.avail_ring,
            used_ring: q.used_ring,
            next_avail: q.next_avail,
            next_used: q.next_used,
            event_idx: q.event_idx_enabled,
        }
    }
}

impl From<QueueSnapshot> for QueueState {
    fn from(q: QueueSnapshot) -> Self {
        QueueState {
            max_size: q.max_size,
            next_avail: q.next_avail,
            next_used: q.next_used,
            event_idx_enabled: q.event_idx,
            size: q.size,
            ready: q.ready,
            desc_table: q.desc_table,
            avail_ring: q.avail_ring,
            used_ring: q.used_ring,
        }
    }
}

/// The transport's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportState {
    /// Virtio device id (checked against the device rebuilt).
    pub device_type: u32,
    /// The status register as the driver wrote it.
    pub status: u32,
    /// `DeviceFeaturesSel`.
    pub device_features_sel: u32,
    /// `DriverFeaturesSel`.
    pub driver_features_sel: u32,
    /// The features the driver acknowledged.
    pub driver_features: u64,
    /// `QueueSel`.
    pub queue_sel: u32,
    /// The queues belong to the device thread (`DRIVER_OK` was accepted).
    pub activated: bool,
    /// Every queue, in index order.
    pub queues: Vec<QueueSnapshot>,
    /// `InterruptStatus`.
    pub interrupt_status: u32,
    /// `DEVICE_NEEDS_RESET` was raised.
    pub needs_reset: bool,
    /// `ConfigGeneration`.
    pub config_generation: u32,
    /// The configuration space.
    pub config: Vec<u8>,
}

/// A transport state refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid virtio-mmio state: `{field}` {reason}")]
pub struct TransportStateError {
    /// The field, e.g. `queues[1].avail_ring`.
    pub field: String,
    /// Why.
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> TransportStateError {
    TransportStateError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// What restoring a transport needs besides its state: the pieces
/// [`MmioTransport::new`] takes.
#[derive(Debug)]
pub struct TransportArgs {
    /// The device, rebuilt from its own state.
    pub info: DeviceInfo,
    /// Guest memory (the memory file, mapped).
    pub mem: GuestMemoryMmap,
    /// The device's interrupt.
    pub interrupt: Arc<Interrupt>,
    /// Its thread.
    pub worker: WorkerHandle,
    /// One eventfd per queue.
    pub queue_events: Vec<EventFd>,
    /// Run on the restored queues before the device thread gets them
    /// (vsock tells the guest its connections are gone).
    pub on_restore: Option<fn(&mut [Queue], &GuestMemoryMmap, &Interrupt)>,
}

fn read_u16(mem: &GuestMemoryMmap, addr: u64) -> Option<u16> {
    let a = GuestAddress(addr.checked_add(2)?);
    mem.read_obj::<u16>(a).ok().map(u16::from_le)
}

impl MmioTransport {
    /// Pauses the device thread for a snapshot (see the module doc); a
    /// second call does nothing.
    pub fn pause_worker(&mut self) {
        if self.paused.is_none() {
            self.paused = self.worker.pause();
        }
    }

    /// Lets the paused device thread go on.
    pub fn resume_worker(&mut self) {
        if self.paused.take().is_some() {
            self.worker.send(Command::Resume);
        }
    }

    /// The device's own state as its paused thread reported it (see
    /// `Backend::snapshot_state`); `None` when it keeps none at run time.
    pub fn reported_state(&self) -> Option<MmioDeviceState> {
        self.paused.as_ref().and_then(|r| r.device.clone())
    }

    /// The handed-over queues with both positions at the used ring's index
    /// in guest memory.
    fn queues_from_used_rings(&self) -> Vec<QueueSnapshot> {
        self.handed_over
            .iter()
            .map(|q| {
                let mut q = QueueSnapshot::from(*q);
                if q.ready {
                    let idx = read_u16(&self.mem, q.used_ring).unwrap_or(0);
                    (q.next_avail, q.next_used) = (idx, idx);
                }
                q
            })
            .collect()
    }
}

impl Persist for MmioTransport {
    type State = TransportState;
    type ConstructorArgs = TransportArgs;
    type Error = TransportStateError;

    /// Call between [`MmioTransport::pause_worker`] and
    /// [`MmioTransport::resume_worker`] once the driver said `DRIVER_OK`.
    fn save(&self) -> TransportState {
        let queues = if self.activated {
            let reported = self.paused.as_ref().and_then(|r| r.queues.clone());
            match reported {
                Some(q) => q.into_iter().map(QueueSnapshot::from).collect(),
                None => self.queues_from_used_rings(),
            }
        } else {
            self.queues.iter().map(|q| q.state().into()).collect()
        };
        TransportState {
            device_type: self.info.device_type,
            status: self.status,
            device_features_sel: self.device_features_sel,
            driver_features_sel: self.driver_features_sel,
            driver_features: self.driver_features,
            queue_sel: self.queue_sel,
            activated: self.activated,
            queues,
            interrupt_status: self.interrupt.status(),
            needs_reset: self.interrupt.needs_reset(),
            config_generation: self.info.config.generation(),
            config: self.info.config.bytes(),
        }
    }

    fn restore(args: TransportArgs, state: &TransportState) -> Result<Self, TransportStateError> {
        state.check(&args.info, &args.mem)?;
        let mut queues = state
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| {
                Queue::try_from(QueueState::from(*q))
                    .map_err(|e| refuse(format!("queues[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        *lock(&args.info.config.bytes) = state.config.clone();
        args.info
            .config
            .generation
            .store(state.config_generation, Ordering::SeqCst);
        args.interrupt
            .restore(state.interrupt_status, state.needs_reset);
        let mut t = MmioTransport::new(
            args.info,
            args.mem,
            args.interrupt,
            args.worker,
            args.queue_events,
        )
        .map_err(|e| refuse("queues", e.to_string()))?;
        t.status = state.status;
        t.device_features_sel = state.device_features_sel;
        t.driver_features_sel = state.driver_features_sel;
        t.driver_features = state.driver_features;
        t.queue_sel = state.queue_sel;
        if state.activated {
            if let Some(hook) = args.on_restore {
                hook(&mut queues, &t.mem, &t.interrupt);
            }
            t.activated = true;
            // As on DRIVER_OK: the device thread owns the queues now.
            t.queues = Vec::new();
            t.handed_over = queues.iter().map(Queue::state).collect();
            t.worker.send(Command::Activate(Activation {
                mem: t.mem.clone(),
                queues,
                features: state.driver_features,
            }));
        } else {
            t.queues = queues;
        }
        Ok(t)
    }
}

impl TransportState {
    /// Checks every value against the device rebuilt (`info`) and guest
    /// memory, so that the restored transport is one a driver could have
    /// made: known status bits in a possible order, features offered,
    /// queues of the device's count and sizes with rings inside memory and
    /// positions the rings agree with.
    pub fn check(
        &self,
        info: &DeviceInfo,
        mem: &GuestMemoryMmap,
    ) -> Result<(), TransportStateError> {
        if self.device_type != info.device_type {
            return Err(refuse(
                "device_type",
                format!(
                    "is {}, the device is {}",
                    self.device_type, info.device_type
                ),
            ));
        }
        if self.status & !STATUS_BITS != 0 {
            return Err(refuse(
                "status",
                format!("{:#x} has unknown bits", self.status),
            ));
        }
        let features_ok = self.status & VIRTIO_CONFIG_S_FEATURES_OK != 0;
        if self.activated && (self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0 || !features_ok) {
            return Err(refuse(
                "activated",
                format!(
                    "is set with status {:#x} (no DRIVER_OK and FEATURES_OK)",
                    self.status
                ),
            ));
        }
        let unknown = self.driver_features & !info.features;
        if unknown != 0 {
            return Err(refuse(
                "driver_features",
                format!("has {unknown:#x}, which the device does not offer"),
            ));
        }
        if features_ok && self.driver_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(refuse(
                "driver_features",
                "lacks VIRTIO_F_VERSION_1 after FEATURES_OK",
            ));
        }
        let irq_bits = VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG;
        if self.interrupt_status & !irq_bits != 0 {
            return Err(refuse(
                "interrupt_status",
                format!("{:#x} has unknown bits", self.interrupt_status),
            ));
        }
        let config_len = info.config.bytes().len();
        if self.config.len() != config_len {
            return Err(refuse(
                "config",
                format!(
                    "is {} bytes, the device's is {config_len}",
                    self.config.len()
                ),
            ));
        }
        if self.queues.len() != info.queue_sizes.len() {
            return Err(refuse(
                "queues",
                format!(
                    "has {} entries, the device has {}",
                    self.queues.len(),
                    info.queue_sizes.len()
                ),
            ));
        }
        for (i, (q, &max)) in self.queues.iter().zip(&info.queue_sizes).enumerate() {
            check_queue(q, max, self.activated, mem)
                .map_err(|(field, reason)| refuse(format!("queues[{i}].{field}"), reason))?;
        }
        Ok(())
    }
}

/// One queue against its device's maximum and guest memory; the field
/// and reason of the first problem.
fn check_queue(
    q: &QueueSnapshot,
    max: u16,
    activated: bool,
    mem: &GuestMemoryMmap,
) -> Result<(), (&'static str, String)> {
    if q.max_size != max {
        return Err((
            "max_size",
            format!("is {}, the device offers {max}", q.max_size),
        ));
    }
    if q.size == 0 || !q.size.is_power_of_two() || q.size > max {
        return Err((
            "size",
            format!("is {}, not a power of two from 1 to {max}", q.size),
        ));
    }
    if !q.ready {
        return Ok(());
    }
    let size = u64::from(q.size);
    // Split-ring layout (virtio 1.x, 2.7): table, available and used rings.
    for (field, addr, len, align) in [
        ("desc_table", q.desc_table, 16 * size, 16),
        ("avail_ring", q.avail_ring, 6 + 2 * size, 2),
        ("used_ring", q.used_ring, 6 + 8 * size, 4),
    ] {
        if addr % align != 0 {
            return Err((field, format!("{addr:#x} is not {align}-byte aligned")));
        }
        let inside = usize::try_from(len)
            .ok()
            .is_some_and(|n| mem.check_range(GuestAddress(addr), n));
        if !inside {
            return Err((field, format!("{addr:#x}+{len:#x} is outside guest memory")));
        }
    }
    if !activated {
        return Ok(());
    }
    // The device wrote `next_used` to the used ring with its last entry.
    let used_idx = read_u16(mem, q.used_ring).unwrap_or(0);
    if used_idx != q.next_used {
        return Err((
            "next_used",
            format!(
                "is {}, the used ring in the memory file says {used_idx}",
                q.next_used
            ),
        ));
    }
    let in_flight = (Wrapping(q.next_avail) - Wrapping(q.next_used)).0;
    if in_flight > q.size {
        return Err((
            "next_avail",
            format!(
                "is {} ahead of next_used on a queue of {}",
                in_flight, q.size
            ),
        ));
    }
    let avail_idx = read_u16(mem, q.avail_ring).unwrap_or(0);
    let pending = (Wrapping(avail_idx) - Wrapping(q.next_avail)).0;
    if pending > q.size {
        return Err((
            "next_avail",
            format!(
                "is {}, {pending} behind the available ring's {avail_idx} on a queue of {}",
                q.next_avail, q.size
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
