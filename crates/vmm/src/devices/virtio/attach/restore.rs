//! The virtio devices of a snapshot back on the bus: each in the slot
//! (register page and interrupt line) it had, its device rebuilt from its
//! own state (the disk image opened again, the vsock socket bound again),
//! its transport in the saved state, and, if the driver had started it,
//! its queues handed to the device thread as the driver left them.

use std::sync::Arc;

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use super::{AttachError, Builder, VirtioDevices, MAX_VIRTIO_DEVICES};
use crate::devices::virtio::balloon::persist::BalloonStateError;
use crate::devices::virtio::balloon::BalloonBackend;
use crate::devices::virtio::block::persist::BlockStateError;
use crate::devices::virtio::block::BlockBackend;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::mmio::persist::{TransportArgs, TransportState, TransportStateError};
use crate::devices::virtio::mmio::{DeviceInfo, MmioTransport, MMIO_LEN};
use crate::devices::virtio::net::persist::NetStateError;
use crate::devices::virtio::rng::RngBackend;
use crate::devices::virtio::vsock::persist::{transport_reset, VsockStateError};
use crate::devices::virtio::worker::WorkerHandle;
use crate::snapshot::state::{MmioDeviceState, VirtioDeviceState};
use crate::snapshot::Persist;
use crate::vm::Vm;

/// Why a saved virtio device cannot be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// It is not where vessel puts the n-th device.
    #[error("The snapshot puts it at {base:#x}+{len:#x} on IRQ {irq}; vessel's slot for it is {want_base:#x}+{MMIO_LEN:#x} on IRQ {want_irq}")]
    Slot {
        /// Saved base.
        base: u64,
        /// Saved length.
        len: u64,
        /// Saved interrupt line.
        irq: u32,
        /// The slot's base.
        want_base: u64,
        /// The slot's line.
        want_irq: u32,
    },
    /// The transport's state.
    #[error(transparent)]
    Transport(#[from] TransportStateError),
    /// The block device's state or image.
    #[error(transparent)]
    Block(#[from] BlockStateError),
    /// The entropy device's rate limiter timer.
    #[error("Cannot create the entropy device's rate limiter")]
    Rng(#[source] std::io::Error),
    /// The vsock device's state or socket.
    #[error(transparent)]
    Vsock(#[from] VsockStateError),
    /// A network interface's state or tap.
    #[error(transparent)]
    Net(#[from] NetStateError),
    /// The balloon's state.
    #[error(transparent)]
    Balloon(#[from] BalloonStateError),
}

/// A device being restored: its saved transport, and what runs on its
/// queues before the device thread gets them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Restoring<'a> {
    state: &'a TransportState,
    on_restore: Option<fn(&mut [virtio_queue::Queue], &GuestMemoryMmap, &Interrupt)>,
}

impl Restoring<'_> {
    /// The transport of device `name` in the saved state.
    pub(super) fn transport(
        self,
        name: &str,
        info: DeviceInfo,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        worker: WorkerHandle,
        queue_events: Vec<EventFd>,
    ) -> Result<MmioTransport, AttachError> {
        let args = TransportArgs {
            info,
            mem,
            interrupt,
            worker,
            queue_events,
            on_restore: self.on_restore,
        };
        MmioTransport::restore(args, self.state)
            .map_err(|e| AttachError::Restore(name.to_owned(), e.into()))
    }
}

fn failed<E: Into<RestoreError>>(name: &str) -> impl FnOnce(E) -> AttachError + '_ {
    move |e| AttachError::Restore(name.to_owned(), e.into())
}

/// Rebuilds the virtio devices `saved` for `vm` (whose memory is the
/// snapshot's); device threads run under their seccomp filter when
/// `seccomp`, and use KVM's eventfds when `kvm_eventfds` and KVM has them.
pub fn restore_devices(
    saved: &[VirtioDeviceState],
    vm: &Vm,
    seccomp: bool,
    kvm_eventfds: bool,
) -> Result<VirtioDevices, AttachError> {
    if saved.len() > MAX_VIRTIO_DEVICES {
        return Err(AttachError::TooMany(saved.len()));
    }
    let mut b = Builder {
        vm,
        kvm_eventfds,
        seccomp,
        out: VirtioDevices::default(),
    };
    for (i, d) in saved.iter().enumerate() {
        let name = d.id.as_str();
        let (want_base, want_irq) = b.next_slot();
        if (d.base, d.len, d.irq) != (want_base, MMIO_LEN, want_irq) {
            return Err(failed(name)(RestoreError::Slot {
                base: d.base,
                len: d.len,
                irq: d.irq,
                want_base,
                want_irq,
            }));
        }
        let restoring = Restoring {
            state: &d.transport,
            on_restore: None,
        };
        let thread = format!("{}{i}", thread_prefix(&d.device));
        match &d.device {
            MmioDeviceState::Block(s) => {
                let make = |irq| {
                    let backend = BlockBackend::restore(irq, s).map_err(failed(name))?;
                    Ok((backend.info(), backend))
                };
                b.place(name.to_owned(), &thread, make, Some(restoring))?;
            }
            MmioDeviceState::Rng(s) => {
                let make = |irq| {
                    let backend = RngBackend::restore(irq, s)
                        .map_err(|e| failed(name)(RestoreError::Rng(e)))?;
                    Ok((crate::devices::virtio::rng::info(), backend))
                };
                b.place(name.to_owned(), &thread, make, Some(restoring))?;
            }
            MmioDeviceState::Vsock(s) => {
                let mut bound = None;
                let make = |irq| {
                    let (info, backend, path) = s.restore(irq).map_err(failed(name))?;
                    bound = Some(path);
                    Ok((info, backend))
                };
                let restoring = Restoring {
                    on_restore: Some(transport_reset),
                    ..restoring
                };
                b.place(name.to_owned(), &thread, make, Some(restoring))?;
                b.out.bound_paths.extend(bound);
            }
            MmioDeviceState::Net(s) => {
                let mut handle = None;
                let make = |irq| {
                    let (info, backend, h) = s.restore(irq).map_err(failed(name))?;
                    handle = Some(h);
                    Ok((info, backend))
                };
                b.place(name.to_owned(), &thread, make, Some(restoring))?;
                b.out.nets.extend(handle);
            }
            MmioDeviceState::Balloon(s) => {
                let memory_bytes = vm.memory().iter().map(|r| r.len()).sum();
                s.check(&d.transport, memory_bytes).map_err(failed(name))?;
                let mut handle = None;
                let make = |irq| {
                    let backend = BalloonBackend::restore(irq, s).map_err(failed(name))?;
                    handle = Some(backend.handle());
                    Ok((backend.info(), backend))
                };
                b.place(name.to_owned(), &thread, make, Some(restoring))?;
                b.out.balloon = handle;
            }
        }
        if let Some(placed) = b.out.devices.last_mut() {
            placed.state = Some(d.device.clone());
        }
    }
    Ok(b.out)
}

/// The device thread's name (`vessel-blk0`…).
fn thread_prefix(d: &MmioDeviceState) -> &'static str {
    match d {
        MmioDeviceState::Block(_) => "blk",
        MmioDeviceState::Rng(_) => "rng",
        MmioDeviceState::Vsock(_) => "vsock",
        MmioDeviceState::Net(_) => "net",
        MmioDeviceState::Balloon(_) => "balloon",
    }
}
