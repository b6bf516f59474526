//! The thread a virtio device does its work on, so that no disk, socket or
//! tap I/O ever runs on a vCPU thread.
//!
//! Each device has one thread running a rust-vmm `event-manager` loop. The
//! thread is started when the VM is built (so the vCPU threads, under their
//! seccomp filter, never create threads), installs the device seccomp
//! filter, and waits: on a control eventfd for [`Command`]s from the
//! transport (activate with the queues, reset, stop), on one eventfd per
//! queue for the driver's notifications (signalled by KVM through an
//! ioeventfd, or by the transport on an MMIO exit), and on whatever host
//! descriptors the device itself registers (tap, sockets, timers).

use std::os::fd::AsRawFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use event_manager::{EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberOps};
use virtio_queue::{Queue, QueueState};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::lock;
use crate::seccomp::{self, ThreadKind};
use crate::snapshot::state::MmioDeviceState;

/// Data tag of the control eventfd; queue eventfds are tagged with their
/// index, devices tag their own descriptors from [`FIRST_DEVICE_TAG`].
const CONTROL_TAG: u32 = u32::MAX;
/// First data tag a device may use for its own descriptors.
pub const FIRST_DEVICE_TAG: u32 = 0x1000;

/// What the driver hands the device on `DRIVER_OK`.
#[derive(Debug)]
pub struct Activation {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The queues, configured by the driver.
    pub queues: Vec<Queue>,
    /// Features the driver accepted.
    pub features: u64,
}

/// The device side of a virtio device, run on its worker thread.
pub trait Backend: Send + 'static {
    /// The driver set `DRIVER_OK`: take the queues, register host
    /// descriptors with `ops` (tags from [`FIRST_DEVICE_TAG`]).
    fn activate(&mut self, activation: Activation, ops: &mut EventOps);
    /// The driver notified queue `index`.
    fn queue_event(&mut self, index: usize, ops: &mut EventOps);
    /// A descriptor the device registered is ready.
    fn device_event(&mut self, _tag: u32, _events: EventSet, _ops: &mut EventOps) {}
    /// The driver reset the device: drop the queues, unregister host
    /// descriptors, be as before activation.
    fn reset(&mut self, ops: &mut EventOps);
    /// For a snapshot, asked between two events while the thread is
    /// paused: the activated queues' states. `None` (the default) means
    /// the backend returns every chain it takes to the used ring before
    /// its event handler ends, so each queue's used index in guest memory
    /// is both its next available and next used position (see
    /// `mmio::persist`). A backend that keeps chains across events (a
    /// balloon's statistics buffer) must report its queues.
    fn queue_states(&self) -> Option<Vec<QueueState>> {
        None
    }
    /// For a snapshot, asked with [`Backend::queue_states`]: the device's
    /// own state, for a device whose state changes at run time (the
    /// balloon's target). `None` (the default): the state taken when the
    /// device was built (`PlacedDevice::state`) still holds.
    fn snapshot_state(&self) -> Option<MmioDeviceState> {
        None
    }
}

/// Messages from the transport.
#[derive(Debug)]
pub enum Command {
    /// `DRIVER_OK`.
    Activate(Activation),
    /// Status 0 after activation.
    Reset,
    /// The VM is going away.
    Stop,
    /// A snapshot: report on the sender, then handle nothing (no queue,
    /// timer or socket event) until [`Command::Resume`].
    Pause(Sender<WorkerReport>),
    /// The snapshot is written: go on.
    Resume,
}

/// What a paused device thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// The backend holds the queues (activated, not reset since).
    pub active: bool,
    /// [`Backend::queue_states`], when active.
    pub queues: Option<Vec<QueueState>>,
    /// [`Backend::snapshot_state`], active or not.
    pub device: Option<MmioDeviceState>,
}

struct DeviceLoop<B> {
    backend: B,
    queue_events: Vec<EventFd>,
    control: EventFd,
    commands: Receiver<Command>,
    active: bool,
    stopped: bool,
}

impl<B: Backend> MutEventSubscriber for DeviceLoop<B> {
    fn init(&mut self, ops: &mut EventOps) {
        // A failure here leaves the device deaf; the guest sees a device
        // that never answers rather than a VMM that stops.
        let _ = ops.add(Events::with_data(&self.control, CONTROL_TAG, EventSet::IN));
        for (i, evt) in self.queue_events.iter().enumerate() {
            let tag = u32::try_from(i).unwrap_or(CONTROL_TAG - 1);
            let _ = ops.add(Events::with_data(evt, tag, EventSet::IN));
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let tag = events.data();
        if tag == CONTROL_TAG {
            let _ = self.control.read();
            while let Ok(cmd) = self.commands.try_recv() {
                self.command(cmd, ops);
            }
        } else if let Some(evt) = usize::try_from(tag)
            .ok()
            .and_then(|i| self.queue_events.get(i).map(|e| (i, e)))
        {
            let (index, evt) = evt;
            let _ = evt.read();
            if self.active {
                self.backend.queue_event(index, ops);
            }
        } else if self.active {
            self.backend.device_event(tag, events.event_set(), ops);
        }
    }
}

impl<B: Backend> DeviceLoop<B> {
    fn command(&mut self, cmd: Command, ops: &mut EventOps) {
        match cmd {
            Command::Activate(a) => {
                self.active = true;
                self.backend.activate(a, ops);
            }
            Command::Reset => {
                if self.active {
                    self.backend.reset(ops);
                    self.active = false;
                }
            }
            Command::Stop => self.stopped = true,
            Command::Pause(reply) => self.pause(reply, ops),
            Command::Resume => {}
        }
    }

    /// Parks the thread between two events, so that nothing it owns (queue
    /// positions, the used rings in guest memory) changes until resumed.
    /// Events that come meanwhile wait in epoll; a command other than
    /// Resume or Stop (none can come while the vCPUs are paused) is handled
    /// after the resume.
    fn pause(&mut self, reply: Sender<WorkerReport>, ops: &mut EventOps) {
        let report = WorkerReport {
            active: self.active,
            queues: if self.active {
                self.backend.queue_states()
            } else {
                None
            },
            device: self.backend.snapshot_state(),
        };
        if reply.send(report).is_err() {
            // Nobody waits for the report: no snapshot is being taken.
            return;
        }
        let mut later = Vec::new();
        loop {
            match self.commands.recv() {
                Ok(Command::Resume) => break,
                Ok(Command::Stop) | Err(_) => {
                    self.stopped = true;
                    return;
                }
                Ok(cmd) => later.push(cmd),
            }
        }
        for cmd in later {
            self.command(cmd, ops);
        }
    }
}

/// The transport's end of a device thread.
#[derive(Debug)]
pub struct WorkerHandle {
    commands: Sender<Command>,
    control: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Sends `cmd` to the device thread.
    pub fn send(&self, cmd: Command) {
        // A thread that is gone has nothing left to do with it.
        if self.commands.send(cmd).is_ok() {
            let _ = self.control.write(1);
        }
    }

    /// Pauses the device thread once it has handled every earlier command
    /// and finished the event it is in (a request being served completes
    /// first); its report. `None` when the thread has ended. Follow with
    /// `send(Command::Resume)`.
    pub fn pause(&self) -> Option<WorkerReport> {
        let (tx, rx) = channel();
        self.send(Command::Pause(tx));
        // The sender is dropped with the command if the thread is gone.
        rx.recv().ok()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the thread `name` running `backend`, woken by `queue_events`
/// (the caller keeps clones to signal them or to register ioeventfds).
pub fn spawn<B: Backend>(
    name: String,
    backend: B,
    queue_events: Vec<EventFd>,
    seccomp_filter: bool,
) -> std::io::Result<WorkerHandle> {
    let control = EventFd::new(libc::EFD_NONBLOCK)?;
    let (commands, rx) = channel();
    let device = Arc::new(Mutex::new(DeviceLoop {
        backend,
        queue_events,
        control: control.try_clone()?,
        commands: rx,
        active: false,
        stopped: false,
    }));
    let mut manager = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let subscriber: Arc<Mutex<dyn MutEventSubscriber + Send>> = device.clone();
    manager.add_subscriber(subscriber);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        if seccomp_filter && seccomp::install(ThreadKind::Device).is_err() {
            // Never run unconfined when a filter was asked for.
            return;
        }
        loop {
            if manager.run().is_err() || lock(&device).stopped {
                break;
            }
        }
    })?;
    Ok(WorkerHandle {
        commands,
        control,
        thread: Some(thread),
    })
}

/// Whether `fd` is the descriptor behind `events` (for devices that
/// register several).
pub fn is_fd(events: &Events, fd: &impl AsRawFd) -> bool {
    events.fd() == fd.as_raw_fd()
}
