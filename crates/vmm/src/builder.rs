//! From a [`VmConfig`] to a running microVM: memory, VM, kernel, boot
//! structures, devices and vCPU threads ([`start_vm`]). What can be done to
//! it then, and how it is stopped, is in [`crate::running`].

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vm_memory::{Address, GuestMemoryBackend};
use vmm_sys_util::eventfd::EventFd;

use crate::arch::x86_64::acpi::{self, AcpiError};
use crate::arch::x86_64::boot::{self, BootError};
use crate::arch::x86_64::dsdt::MmioDevice;
use crate::arch::x86_64::layout::{FIRST_ADDR_PAST_32BITS, PVH_INFO_START, ZERO_PAGE_START};
use crate::arch::x86_64::mptable::{self, MptableError, MAX_CPUS};
use crate::arch::x86_64::regs::BootProtocol;
use crate::config::VmConfig;
use crate::devices::bus::{Bus, BusError};
use crate::devices::legacy::i8042::{I8042Args, I8042RestoreError};
use crate::devices::legacy::serial::{SerialError, StdinForwarder};
use crate::devices::legacy::{
    acpi_sleep, cmos, i8042, serial, AcpiSleep, Cmos, SerialDevice, I8042,
};
use crate::devices::virtio::{self, mmio::MMIO_LEN, AttachError, VirtioDevices};
use crate::loader::{self, LoaderError};
use crate::memory::{self, MemoryError};
use crate::running::RunningVm;
use crate::seccomp::{self, SeccompError, ThreadKind};
use crate::snapshot::state::DevicesState;
use crate::snapshot::vcpu::VcpuStateError;
use crate::snapshot::{Persist, SnapshotContext};
use crate::vcpu::{self, BootEntry, Vcpu, VcpuControl, VcpuError, VcpuStop};
use crate::vm::{Vm, VmError};

/// Errors building or running a microVM.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The vCPU count is out of range.
    #[error("A microVM has 1 to {max} vCPUs, {wanted} were asked for")]
    VcpuCount {
        /// Asked for.
        wanted: usize,
        /// The limit (vessel's or KVM's, whichever is lower).
        max: usize,
    },
    /// Guest memory.
    #[error("Cannot set up guest memory")]
    Memory(#[source] MemoryError),
    /// The KVM VM.
    #[error("Cannot set up the KVM virtual machine")]
    Vm(#[source] VmError),
    /// Kernel, initrd or command line.
    #[error("Cannot load the guest kernel")]
    Loader(#[source] LoaderError),
    /// Boot information.
    #[error("Cannot write the boot information")]
    Boot(#[source] BootError),
    /// The MP table.
    #[error("Cannot write the MP table")]
    Mptable(#[source] MptableError),
    /// The ACPI tables.
    #[error("Cannot write the ACPI tables")]
    Acpi(#[source] AcpiError),
    /// A device.
    #[error("Cannot set up the {0}")]
    Device(&'static str, #[source] DeviceError),
    /// Configuring a vCPU.
    #[error("Cannot configure vCPU {0}")]
    ConfigureVcpu(u8, #[source] VcpuError),
    /// Starting a vCPU thread.
    #[error("Cannot start the thread of vCPU {0}")]
    SpawnVcpu(u8, #[source] std::io::Error),
    /// A vCPU failed while the guest ran.
    #[error("vCPU {0} failed")]
    Vcpu(u8, #[source] VcpuError),
    /// A thread's seccomp filter.
    #[error("Cannot confine the VMM")]
    Seccomp(#[source] SeccompError),
    /// A virtio device.
    #[error("Cannot set up the virtio devices")]
    Virtio(#[source] AttachError),
    /// What a snapshot will need to ask KVM.
    #[error("Cannot read what KVM can save of a vCPU")]
    SnapshotContext(#[source] VcpuStateError),
}

/// Errors of device setup.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The serial port.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// Placing a device on a bus.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A snapshot's i8042 state.
    #[error(transparent)]
    I8042(#[from] I8042RestoreError),
    /// A snapshot's CMOS state.
    #[error(transparent)]
    Cmos(#[from] cmos::CmosRestoreError),
    /// An eventfd.
    #[error("Cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
    /// Wiring an interrupt.
    #[error("Cannot connect interrupt line {gsi}")]
    Irqfd {
        /// The line.
        gsi: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Something that ends the guest's run, sent to the VMM thread.
#[derive(Debug)]
pub enum VmEvent {
    /// The i8042 reset line was pulsed.
    Reset,
    /// The guest entered ACPI S5 (soft off) through the sleep control
    /// register.
    PowerOff,
    /// A vCPU loop ended.
    Vcpu(u8, Result<VcpuStop, VcpuError>),
}

/// Where a running VM reports [`VmEvent`]s (called from vCPU threads).
pub type Notify = Arc<dyn Fn(VmEvent) + Send + Sync>;

pub(crate) struct Devices {
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    pub(crate) serial: Arc<Mutex<SerialDevice>>,
    pub(crate) i8042: Arc<Mutex<I8042>>,
    pub(crate) cmos: Arc<Mutex<Cmos>>,
    pub(crate) virtio: VirtioDevices,
    _stdin: Option<StdinForwarder>,
}

fn device_err(what: &'static str) -> impl FnOnce(DeviceError) -> VmmError {
    move |e| VmmError::Device(what, e)
}

fn irqfd(vm: &Vm, what: &'static str, gsi: u32) -> Result<EventFd, VmmError> {
    let irq = EventFd::new(libc::EFD_NONBLOCK)
        .map_err(|e| VmmError::Device(what, DeviceError::EventFd(e)))?;
    if vm.has_irqchip() {
        vm.fd()
            .register_irqfd(&irq, gsi)
            .map_err(|source| VmmError::Device(what, DeviceError::Irqfd { gsi, source }))?;
    }
    Ok(irq)
}

/// Builds the devices and puts them on their buses: fresh, or in the
/// state `restored` from a snapshot.
pub(crate) fn setup_devices(
    config: &VmConfig,
    vm: &Vm,
    notify: Notify,
    restored: Option<&DevicesState>,
) -> Result<Devices, VmmError> {
    let mut pio = Bus::new();

    let irq = irqfd(vm, "serial console", serial::COM1_IRQ)?;
    let out = config
        .console
        .open()
        .map_err(|e| VmmError::Device("serial console", e.into()))?;
    let com1 = match restored {
        Some(state) => SerialDevice::restore((irq, out), &state.serial)
            .map_err(|e| VmmError::Device("serial console", e.into()))?,
        None => SerialDevice::new(irq, out),
    };
    let com1 = Arc::new(Mutex::new(com1));
    pio.insert(com1.clone(), serial::COM1_BASE, serial::COM_PORT_LEN)
        .map_err(|e| VmmError::Device("serial console", e.into()))?;
    let stdin = if config.console_input {
        // The input thread is confined like the VMM thread.
        let filter = config.seccomp.then_some(ThreadKind::Vmm);
        Some(
            StdinForwarder::start(com1.clone(), filter)
                .map_err(|e| VmmError::Device("console input", e.into()))?,
        )
    } else {
        None
    };

    let kbd_irq = irqfd(vm, "i8042 controller", i8042::KBD_IRQ)?;
    let on_power_off = {
        let notify = notify.clone();
        move || notify(VmEvent::PowerOff)
    };
    let on_reset = move || notify(VmEvent::Reset);
    let i8042 = match restored {
        Some(state) => {
            let args = I8042Args {
                on_reset: Box::new(on_reset),
                irq: kbd_irq,
            };
            I8042::restore(args, &state.i8042)
                .map_err(|e| device_err("i8042 controller")(e.into()))?
        }
        None => I8042::new(on_reset).with_irq(kbd_irq),
    };
    let i8042 = Arc::new(Mutex::new(i8042));
    pio.insert(i8042.clone(), i8042::I8042_BASE, i8042::I8042_LEN)
        .map_err(|e| device_err("i8042 controller")(e.into()))?;

    let mem = vm.memory();
    let last = mem.last_addr().raw_value() + 1;
    let below = last.min(FIRST_ADDR_PAST_32BITS);
    let above = last.saturating_sub(FIRST_ADDR_PAST_32BITS);
    let cmos = match restored {
        Some(state) => Cmos::restore((), &state.cmos).map_err(|e| device_err("CMOS")(e.into()))?,
        None => Cmos::new(below, above),
    };
    let cmos = Arc::new(Mutex::new(cmos));
    pio.insert(cmos.clone(), cmos::CMOS_BASE, cmos::CMOS_LEN)
        .map_err(|e| device_err("CMOS")(e.into()))?;

    // Stateless: a restored VM gets a new one.
    let sleep = Arc::new(Mutex::new(AcpiSleep::new(on_power_off)));
    pio.insert(
        sleep,
        acpi_sleep::ACPI_SLEEP_BASE,
        acpi_sleep::ACPI_SLEEP_LEN,
    )
    .map_err(|e| device_err("ACPI sleep registers")(e.into()))?;

    Ok(Devices {
        pio: Arc::new(pio),
        mmio: Arc::new(Bus::new()),
        serial: com1,
        i8042,
        cmos,
        virtio: VirtioDevices::default(),
        _stdin: stdin,
    })
}

/// Puts the virtio devices on a fresh MMIO bus (before any vCPU runs).
pub(crate) fn add_virtio(devices: &mut Devices, virtio: VirtioDevices) -> Result<(), VmmError> {
    let mut mmio = Bus::new();
    for d in &virtio.devices {
        mmio.insert(d.transport.clone(), d.base, MMIO_LEN)
            .map_err(|e| device_err("virtio-mmio bus")(e.into()))?;
    }
    devices.mmio = Arc::new(mmio);
    devices.virtio = virtio;
    Ok(())
}

/// Loads kernel, initrd and command line and writes the boot information
/// (MP table, ACPI tables describing the `virtio` devices, e820 map);
/// returns the boot vCPU's entry.
fn load_boot(config: &VmConfig, vm: &Vm, virtio: &[MmioDevice]) -> Result<BootEntry, VmmError> {
    let mem = vm.memory();
    let kernel = loader::load_kernel(mem, &config.kernel).map_err(VmmError::Loader)?;
    let initrd = config
        .initrd
        .as_deref()
        .map(|p| loader::load_initrd(mem, p, kernel.kernel_end))
        .transpose()
        .map_err(VmmError::Loader)?;
    let cmdline_len = loader::load_cmdline(mem, &config.cmdline).map_err(VmmError::Loader)?;
    mptable::setup_mptable(mem, config.vcpus).map_err(VmmError::Mptable)?;
    let rsdp = acpi::setup_acpi_tables(mem, config.vcpus, virtio).map_err(VmmError::Acpi)?;
    let boot_info = match kernel.protocol {
        BootProtocol::Pvh => {
            boot::write_pvh_start_info(mem, initrd, Some(rsdp)).map_err(VmmError::Boot)?;
            PVH_INFO_START
        }
        BootProtocol::Linux64 => {
            boot::write_linux_boot_params(
                mem,
                kernel.setup_header,
                cmdline_len,
                initrd,
                Some(rsdp),
            )
            .map_err(VmmError::Boot)?;
            ZERO_PAGE_START
        }
    };
    Ok(BootEntry {
        protocol: kernel.protocol,
        entry: kernel.entry.raw_value(),
        boot_info,
    })
}

fn spawn_vcpu(
    mut vcpu: Vcpu,
    devices: &Devices,
    control: &Arc<VcpuControl>,
    seccomp: bool,
    notify: Notify,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<JoinHandle<()>, VmmError> {
    let index = vcpu.index();
    let (pio, mmio, control) = (devices.pio.clone(), devices.mmio.clone(), control.clone());
    std::thread::Builder::new()
        .name(format!("vessel-vcpu{index}"))
        .spawn(move || {
            let result = if seccomp {
                seccomp::install(ThreadKind::Vcpu).map_err(VcpuError::Seccomp)
            } else {
                Ok(())
            };
            // Named and confined (or failed): the builder may go on.
            drop(ready);
            let result = result.and_then(|()| vcpu.run_loop(&pio, &mmio, &control));
            control.vcpu_gone(index);
            notify(VmEvent::Vcpu(index, result));
        })
        .map_err(|e| VmmError::SpawnVcpu(index, e))
}

/// Creates the VM for `memory` with `vcpus` vCPUs (checked against KVM's
/// limit), its in-kernel irqchip and PIT, and the vCPU kick handler.
pub(crate) fn create_vm(memory: vm_memory::GuestMemoryMmap, vcpus: u8) -> Result<Vm, VmmError> {
    let mut vm = Vm::new(memory).map_err(VmmError::Vm)?;
    let max = vm.max_vcpus().min(usize::from(MAX_CPUS));
    if vcpus == 0 || usize::from(vcpus) > max {
        return Err(VmmError::VcpuCount {
            wanted: usize::from(vcpus),
            max,
        });
    }
    vm.setup_irqchip().map_err(VmmError::Vm)?;
    vcpu::install_kick_handler().map_err(|e| VmmError::ConfigureVcpu(0, e))?;
    Ok(vm)
}

/// Starts one thread per vCPU; with `paused` each parks before it first
/// enters the guest, until [`RunningVm::resume`].
pub(crate) fn spawn_vcpus(
    vm: Vm,
    devices: Devices,
    vcpus: Vec<Vcpu>,
    seccomp: bool,
    notify: Notify,
    paused: bool,
) -> Result<RunningVm, VmmError> {
    let snapshots = SnapshotContext::probe(&vm).map_err(VmmError::SnapshotContext)?;
    let control = Arc::new(VcpuControl::new());
    if paused {
        control.request_pause();
    }
    let mut threads = Vec::with_capacity(vcpus.len());
    let (ready, confined) = std::sync::mpsc::channel();
    for vcpu in vcpus {
        match spawn_vcpu(
            vcpu,
            &devices,
            &control,
            seccomp,
            notify.clone(),
            ready.clone(),
        ) {
            Ok(t) => threads.push(t),
            Err(e) => {
                RunningVm::new(vm, devices, control, threads, snapshots).stop();
                return Err(e);
            }
        }
    }
    // Every vCPU thread has its name and seccomp filter when the VM is
    // reported started (each drops its sender once confined).
    drop(ready);
    let _ = confined.recv();
    let running = RunningVm::new(vm, devices, control, threads, snapshots);
    if paused {
        running.wait_parked();
    }
    Ok(running)
}

/// Builds the microVM `config` describes and starts its vCPUs; the guest
/// runs until [`RunningVm::stop`]. Whatever ends the guest (reset, triple
/// fault, a vCPU error) is reported through `notify`; see
/// [`crate::running::outcome`].
pub fn start_vm(config: &VmConfig, notify: Notify) -> Result<RunningVm, VmmError> {
    let memory = memory::create_guest_memory(config.memory_mib).map_err(VmmError::Memory)?;
    let vm = create_vm(memory, config.vcpus)?;
    let virtio = virtio::attach(&config.devices, &vm, config.seccomp).map_err(VmmError::Virtio)?;
    let mut with_devices = config.clone();
    with_devices.cmdline.push_str(&virtio.cmdline);
    let slots: Vec<MmioDevice> = virtio
        .devices
        .iter()
        .map(|d| MmioDevice {
            base: d.base,
            irq: d.irq,
        })
        .collect();
    let boot = load_boot(&with_devices, &vm, &slots)?;

    let mut devices = setup_devices(config, &vm, notify.clone(), None)?;
    add_virtio(&mut devices, virtio)?;

    let cpuid = vm.supported_cpuid().map_err(VmmError::Vm)?;
    let mut vcpus = Vec::with_capacity(usize::from(config.vcpus));
    for index in 0..config.vcpus {
        let mut vcpu = vm.create_vcpu(index).map_err(VmmError::Vm)?;
        let entry = (index == 0).then_some(boot);
        vcpu.configure(
            vm.memory(),
            &cpuid,
            config.vcpus,
            &config.cpuid_masks,
            vm.has_irqchip(),
            entry,
        )
        .map_err(|e| VmmError::ConfigureVcpu(index, e))?;
        vcpus.push(vcpu);
    }
    spawn_vcpus(vm, devices, vcpus, config.seccomp, notify, false)
}
