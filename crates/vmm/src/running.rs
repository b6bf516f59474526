//! A microVM whose vCPUs run: pause and resume them, press Ctrl+Alt+Del,
//! stop every vCPU; and [`run_vm`], the whole life of a VM in one call.

use std::path::Path;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::signal::Killable;

use crate::builder::{start_vm, Devices, VmEvent, VmmError};
use crate::config::{VmConfig, VmExitReason};
use crate::devices::bus::lock;
use crate::devices::virtio::balloon::BalloonHandle;
use crate::devices::virtio::net::Limits;
use crate::snapshot::state::MmioDeviceState;
use crate::snapshot::{self, SnapshotContext, SnapshotError};
use crate::vcpu::{self, VcpuControl, VcpuStop};
use crate::vm::Vm;

/// A VM with running (or paused) vCPU threads. Drop order matters: the
/// threads are stopped before the VM and its memory go.
pub struct RunningVm {
    control: Arc<VcpuControl>,
    threads: Vec<JoinHandle<()>>,
    devices: Devices,
    snapshots: SnapshotContext,
    vm: Vm,
}

impl std::fmt::Debug for RunningVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningVm")
            .field("vcpus", &self.threads.len())
            .field("paused", &self.control.is_paused())
            .finish_non_exhaustive()
    }
}

impl RunningVm {
    pub(crate) fn new(
        vm: Vm,
        devices: Devices,
        control: Arc<VcpuControl>,
        threads: Vec<JoinHandle<()>>,
        snapshots: SnapshotContext,
    ) -> Self {
        RunningVm {
            control,
            threads,
            devices,
            snapshots,
            vm,
        }
    }

    /// The KVM VM.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    fn kick_all(&self) {
        for t in &self.threads {
            // A thread that already returned ignores the signal.
            let _ = t.kill(vcpu::kick_signal());
        }
    }

    /// Parks every vCPU thread outside KVM_RUN; returns once all are parked
    /// (or have ended). Pausing a paused VM does nothing.
    pub fn pause(&self) {
        if self.control.is_paused() {
            return;
        }
        self.control.request_pause();
        self.kick_all();
        self.control.wait_parked(self.threads.len());
    }

    /// Waits until every vCPU thread of a VM started paused has parked.
    pub(crate) fn wait_parked(&self) {
        self.control.wait_parked(self.threads.len());
    }

    /// Writes a full snapshot of the paused VM: guest memory to `mem_path`,
    /// every vCPU's, the VM's and each device's state to `state_path`
    /// (see [`crate::snapshot`]). Refused while the VM runs.
    pub fn snapshot(&self, state_path: &Path, mem_path: &Path) -> Result<(), SnapshotError> {
        if !self.is_paused() {
            return Err(SnapshotError::NotPaused);
        }
        let (vcpus, _) = self.shape();
        snapshot::create::create(
            &snapshot::create::Source {
                vm: &self.vm,
                devices: &self.devices,
                control: &self.control,
                vcpus,
                context: &self.snapshots,
            },
            state_path,
            mem_path,
        )
    }

    /// The vCPU count and guest memory in MiB.
    pub fn shape(&self) -> (u8, u64) {
        use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
        let bytes: u64 = self.vm.memory().iter().map(|r| r.len()).sum();
        let vcpus = u8::try_from(self.threads.len()).unwrap_or(u8::MAX);
        (vcpus, bytes >> 20)
    }

    /// Lets the vCPUs run again.
    pub fn resume(&self) {
        self.control.resume();
    }

    /// Whether the vCPUs are paused.
    pub fn is_paused(&self) -> bool {
        self.control.is_paused()
    }

    /// The VMM thread's handle on the balloon, if the VM has one.
    pub fn balloon(&self) -> Option<&BalloonHandle> {
        self.devices.virtio.balloon.as_ref()
    }

    /// New rate limiters for network interface `iface_id`: the running
    /// device takes them and a snapshot keeps them. `false` when the VM
    /// has no such interface.
    pub fn set_net_limits(&mut self, iface_id: &str, limits: Limits) -> bool {
        let virtio = &mut self.devices.virtio;
        let Some(handle) = virtio.nets.iter().find(|n| n.iface_id() == iface_id) else {
            return false;
        };
        handle.set_limits(limits);
        for d in &mut virtio.devices {
            if let Some(MmioDeviceState::Net(s)) = &mut d.state {
                if s.iface_id == iface_id {
                    s.set_limits(limits);
                }
            }
        }
        true
    }

    /// Presses Ctrl+Alt+Del on the guest's keyboard controller.
    pub fn send_ctrl_alt_del(&self) {
        lock(&self.devices.i8042).send_ctrl_alt_del();
    }

    /// Stops every vCPU (kicking it out of KVM_RUN, waking it if parked)
    /// and joins the threads.
    pub fn stop(mut self) {
        self.stop_vcpus();
    }

    /// As [`RunningVm::stop`], then hands KVM's destruction of the VM to a
    /// helper task ([`crate::teardown`]) so that dropping it returns at once.
    /// For a VMM process about to exit: the helper closes the VM once this
    /// process has exited. If the helper cannot be started the VM is
    /// destroyed here as by `stop`; the error says why.
    pub fn stop_with_async_teardown(mut self) -> Result<(), crate::teardown::TeardownError> {
        use std::os::fd::AsRawFd;
        self.stop_vcpus();
        let release = crate::teardown::hand_off(self.vm.fd().as_raw_fd())?;
        release.keep_until_exit();
        Ok(())
    }

    fn stop_vcpus(&mut self) {
        self.control.request_stop();
        self.kick_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        self.stop_vcpus();
    }
}

/// What a [`VmEvent`] means for the VM: `None` when it does not end the
/// guest's run (a vCPU that stopped because it was told to).
pub fn outcome(event: VmEvent) -> Option<Result<VmExitReason, VmmError>> {
    Some(match event {
        VmEvent::Reset => Ok(VmExitReason::Reset),
        VmEvent::PowerOff => Ok(VmExitReason::PowerOff),
        VmEvent::Vcpu(_, Ok(VcpuStop::Stopped)) => return None,
        VmEvent::Vcpu(_, Ok(VcpuStop::Halted)) => Ok(VmExitReason::Halted),
        VmEvent::Vcpu(_, Ok(VcpuStop::TripleFault)) => Ok(VmExitReason::TripleFault),
        VmEvent::Vcpu(_, Ok(VcpuStop::Reset)) => Ok(VmExitReason::Reset),
        VmEvent::Vcpu(_, Ok(VcpuStop::PowerOff)) => Ok(VmExitReason::PowerOff),
        VmEvent::Vcpu(_, Ok(VcpuStop::Crash)) => Ok(VmExitReason::Crash),
        VmEvent::Vcpu(index, Err(e)) => Err(VmmError::Vcpu(index, e)),
    })
}

/// Boots the microVM `config` describes and runs it until the guest ends
/// (reboot, power-off, triple fault) or a vCPU fails. Every vCPU thread has
/// stopped when this returns. The calling thread gets no seccomp filter
/// (it belongs to the caller); the vCPU threads do when `config.seccomp`.
pub fn run_vm(config: VmConfig) -> Result<VmExitReason, VmmError> {
    let (tx, events) = channel();
    let vm = start_vm(
        &config,
        Arc::new(move |e| {
            let _ = tx.send(e);
        }),
    )?;
    let result = loop {
        // Every vCPU thread reports before it ends, and `vm` keeps the
        // sender alive: the channel cannot close first.
        let Ok(event) = events.recv() else {
            break Ok(VmExitReason::Halted);
        };
        if let Some(result) = outcome(event) {
            break result;
        }
    };
    vm.stop();
    result
}
