//! From the devices configuration to virtio-mmio devices ready on the bus:
//! one register page and one interrupt line each, allocated in order
//! (drives, network interfaces, vsock, entropy, balloon) from the start of
//! the MMIO hole and from IRQ 5; an interrupt (irqfd, or the KVM_IRQ_LINE
//! fallback), one eventfd per queue (an ioeventfd on `QueueNotify` when
//! KVM offers it), and the device thread. The kernel command line gets a
//! `virtio_mmio.device=4K@ADDR:IRQ` per device.
//!
//! Everything a device needs from the host (image, tap, socket) is opened
//! here, before any vCPU runs: a device that cannot be set up fails the
//! whole build, and dropping what was built so far undoes it.

use std::sync::{Arc, Mutex};

use kvm_ioctls::{Cap, IoEventAddress};
use virtio_bindings::virtio_mmio::VIRTIO_MMIO_QUEUE_NOTIFY;
use vmm_sys_util::eventfd::EventFd;

use super::balloon::{self, BalloonError, BalloonHandle};
use super::block::{self, BlockError};
use super::interrupt::{Interrupt, IrqLine};
use super::mmio::{DeviceInfo, MmioTransport, MMIO_LEN};
use super::net::persist::NetState;
use super::net::{self, NetError, NetHandle};
use super::rng;
use super::vsock::persist::VsockState;
use super::vsock::{self, VsockError};
use super::worker::{self, Backend};
use crate::arch::x86_64::layout::{IOAPIC_PINS, MMIO_GAP_START};
use crate::config::devices::DevicesConfig;
use crate::snapshot::state::MmioDeviceState;
use crate::snapshot::Persist;
use crate::vm::Vm;

/// First MMIO address given to a virtio device.
pub const VIRTIO_MMIO_BASE: u64 = MMIO_GAP_START;
/// First interrupt line given to a virtio device (after the legacy ones
/// vessel uses: 1 keyboard, 4 COM1).
pub const FIRST_VIRTIO_IRQ: u32 = 5;
/// Most virtio devices: one per remaining I/O APIC pin.
pub const MAX_VIRTIO_DEVICES: usize = IOAPIC_PINS as usize - FIRST_VIRTIO_IRQ as usize;

/// Errors setting up the virtio devices.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// More devices than interrupt lines.
    #[error("{0} virtio devices configured, a microVM has at most {MAX_VIRTIO_DEVICES}")]
    TooMany(usize),
    /// A block device.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The balloon.
    #[error(transparent)]
    Balloon(#[from] BalloonError),
    /// A network interface.
    #[error(transparent)]
    Net(#[from] NetError),

    /// A device kind this build of vessel does not have yet.
    #[error("{0} are not supported by vessel yet")]
    NotYet(&'static str),
    /// The vsock device.
    #[error(transparent)]
    Vsock(#[from] VsockError),
    /// The entropy device.
    #[error("Cannot set up the entropy device")]
    Rng(#[source] std::io::Error),
    /// A device of a snapshot.
    #[error("Cannot restore the {0} device")]
    Restore(String, #[source] restore::RestoreError),
    /// An eventfd, the device thread, or the VM handle.
    #[error("Cannot set up the {what} of the {device} device")]
    Host {
        /// What.
        what: &'static str,
        /// Which device.
        device: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// KVM refused an irqfd or ioeventfd.
    #[error("KVM refused the {what} of the {device} device")]
    Kvm {
        /// What.
        what: &'static str,
        /// Which device.
        device: String,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A queue size (a bug in a device).
    #[error("Invalid queue size in the {0} device")]
    Queue(String, #[source] virtio_queue::Error),
}

/// A virtio device placed on the bus.
#[derive(Debug)]
pub struct PlacedDevice {
    /// Its name (`block rootfs`, `net eth0`, `vsock`, `entropy`, `balloon`).
    pub name: String,
    /// Its transport.
    pub transport: Arc<Mutex<MmioTransport>>,
    /// Register page address.
    pub base: u64,
    /// Interrupt line.
    pub irq: u32,
    /// The device's own state for snapshots (set when it is built, since
    /// it does not change); `None` for a kind snapshots cannot save yet,
    /// or whose thread reports it when paused (the balloon, whose target
    /// changes at run time: `Backend::snapshot_state`).
    pub state: Option<MmioDeviceState>,
}

/// The virtio devices of a VM.
#[derive(Debug, Default)]
pub struct VirtioDevices {
    /// In bus order.
    pub devices: Vec<PlacedDevice>,

    /// What to append to the kernel command line.
    pub cmdline: String,
    /// The VMM thread's handle on the balloon, if there is one.
    pub balloon: Option<BalloonHandle>,
    /// The VMM thread's handles on the network interfaces.
    pub nets: Vec<NetHandle>,
    /// Socket paths bound for the devices (vsock's `uds_path`), removed
    /// after the devices (their threads joined), on this thread: device
    /// threads may not unlink.
    pub bound_paths: Vec<vsock::BoundPath>,
}

struct Builder<'a> {
    vm: &'a Vm,
    kvm_eventfds: bool,
    seccomp: bool,
    out: VirtioDevices,
}

impl Builder<'_> {
    fn next_slot(&self) -> (u64, u32) {
        let i = self.out.devices.len();
        (
            VIRTIO_MMIO_BASE + MMIO_LEN * i as u64,
            FIRST_VIRTIO_IRQ + i as u32,
        )
    }

    fn interrupt(&self, device: &str, irq: u32) -> Result<Arc<Interrupt>, AttachError> {
        let host = |what| {
            move |source| AttachError::Host {
                what,
                device: device.to_owned(),
                source,
            }
        };
        let line = if !self.vm.has_irqchip() {
            IrqLine::None
        } else if self.kvm_eventfds && self.vm.fd().check_extension(Cap::Irqfd) {
            let fd = EventFd::new(libc::EFD_NONBLOCK).map_err(host("interrupt eventfd"))?;
            self.vm
                .fd()
                .register_irqfd(&fd, irq)
                .map_err(|source| AttachError::Kvm {
                    what: "irqfd",
                    device: device.to_owned(),
                    source,
                })?;
            IrqLine::Irqfd(fd)
        } else {
            IrqLine::Ioctl {
                vm: self.vm.clone_fd().map_err(host("VM handle"))?,
                gsi: irq,
            }
        };
        Ok(Arc::new(Interrupt::new(line)))
    }

    /// Places a device made by `make` (given its interrupt).
    fn add<B: Backend>(
        &mut self,
        name: String,
        thread: &str,
        make: impl FnOnce(Arc<Interrupt>) -> Result<(DeviceInfo, B), AttachError>,
    ) -> Result<&mut PlacedDevice, AttachError> {
        self.place(name, thread, make, None)
    }

    /// Places a device made by `make`, with a fresh transport or, when
    /// `restoring`, one in a snapshot's state.
    fn place<B: Backend>(
        &mut self,
        name: String,
        thread: &str,
        make: impl FnOnce(Arc<Interrupt>) -> Result<(DeviceInfo, B), AttachError>,
        restoring: Option<restore::Restoring<'_>>,
    ) -> Result<&mut PlacedDevice, AttachError> {
        let (base, irq) = self.next_slot();
        let interrupt = self.interrupt(&name, irq)?;
        let (info, backend) = make(interrupt.clone())?;
        let host = |what| {
            let name = name.clone();
            move |source| AttachError::Host {
                what,
                device: name,
                source,
            }
        };
        let mut queue_events = Vec::new();
        let ioeventfd = self.kvm_eventfds && self.vm.fd().check_extension(Cap::Ioeventfd);
        for index in 0..info.queue_sizes.len() {
            let evt = EventFd::new(libc::EFD_NONBLOCK).map_err(host("queue eventfd"))?;
            if ioeventfd {
                let addr = IoEventAddress::Mmio(base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY));
                self.vm
                    .fd()
                    .register_ioevent(&evt, &addr, index as u32)
                    .map_err(|source| AttachError::Kvm {
                        what: "ioeventfd",
                        device: name.clone(),
                        source,
                    })?;
            }
            queue_events.push(evt);
        }
        let clones = queue_events
            .iter()
            .map(EventFd::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(host("queue eventfd"))?;
        let worker = worker::spawn(format!("vessel-{thread}"), backend, clones, self.seccomp)
            .map_err(host("thread"))?;
        let mem = self.vm.memory().clone();
        let transport = match restoring {
            None => MmioTransport::new(info, mem, interrupt, worker, queue_events)
                .map_err(|e| AttachError::Queue(name.clone(), e))?,
            Some(r) => r.transport(&name, info, mem, interrupt, worker, queue_events)?,
        };
        self.out.cmdline.push_str(&format!(
            " virtio_mmio.device={}K@{base:#x}:{irq}",
            MMIO_LEN >> 10
        ));
        self.out.devices.push(PlacedDevice {
            name,
            transport: Arc::new(Mutex::new(transport)),
            base,
            irq,
            state: None,
        });
        let placed = self.out.devices.last_mut();
        Ok(placed.unwrap_or_else(|| unreachable!("just pushed")))
    }
}

/// Builds every device of `config` for `vm`; device threads run under
/// their seccomp filter when `seccomp`.
pub fn attach(
    config: &DevicesConfig,
    vm: &Vm,
    seccomp: bool,
) -> Result<VirtioDevices, AttachError> {
    let count = config.drives.len()
        + config.net.len()
        + usize::from(config.vsock.is_some())
        + usize::from(config.entropy.is_some())
        + usize::from(config.balloon.is_some());
    if count > MAX_VIRTIO_DEVICES {
        return Err(AttachError::TooMany(count));
    }
    let mut b = Builder {
        vm,
        kvm_eventfds: config.kvm_eventfds,
        seccomp,
        out: VirtioDevices::default(),
    };
    for (i, drive) in config.drives.iter().enumerate() {
        let mut saved = None;
        let placed = b.add(
            format!("block {}", drive.drive_id),
            &format!("blk{i}"),
            |irq| {
                let (info, backend) = block::create(drive, irq)?;
                saved = Some(MmioDeviceState::Block(backend.save()));
                Ok((info, backend))
            },
        )?;
        placed.state = saved;
    }
    for (i, iface) in config.net.iter().enumerate() {
        let mut handle = None;
        b.add(
            format!("net {}", iface.iface_id),
            &format!("net{i}"),
            |irq| {
                let (info, backend, h) = net::create(iface, irq)?;
                handle = Some(h);
                Ok((info, backend))
            },
        )?
        .state = Some(MmioDeviceState::Net(NetState::of(iface)));
        b.out.nets.extend(handle);
    }
    if let Some(v) = &config.vsock {
        let mut bound = None;
        b.add("vsock".into(), "vsock", |irq| {
            let (info, backend, path) = vsock::create(v, irq)?;
            bound = Some(path);
            Ok((info, backend))
        })?
        .state = Some(MmioDeviceState::Vsock(VsockState::of(v)));
        b.out.bound_paths.extend(bound);
    }
    if let Some(e) = &config.entropy {
        let mut saved = None;
        let placed = b.add("entropy".into(), "rng", |irq| {
            let (info, backend) = rng::create(e, irq).map_err(AttachError::Rng)?;
            saved = Some(MmioDeviceState::Rng(backend.save()));
            Ok((info, backend))
        })?;
        placed.state = saved;
    }

    if let Some(c) = &config.balloon {
        let mut handle = None;
        b.add("balloon".into(), "balloon", |irq| {
            let (info, backend, h) = balloon::create(c, irq)?;
            handle = Some(h);
            Ok((info, backend))
        })?;
        b.out.balloon = handle;
    }

    if let Some(root) = config.root_cmdline() {
        b.out.cmdline.push(' ');
        b.out.cmdline.push_str(&root);
    }
    Ok(b.out)
}

pub mod restore;
