//! From a [`VmConfig`] to a running microVM and back: memory, VM, kernel,
//! boot structures, devices, vCPU threads, and a clean stop of every vCPU
//! once the guest ends.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vm_memory::{Address, GuestMemoryBackend};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::Killable;

use crate::arch::x86_64::boot::{self, BootError};
use crate::arch::x86_64::layout::{FIRST_ADDR_PAST_32BITS, PVH_INFO_START, ZERO_PAGE_START};
use crate::arch::x86_64::mptable::{self, MptableError, MAX_CPUS};
use crate::arch::x86_64::regs::BootProtocol;
use crate::config::{VmConfig, VmExitReason};
use crate::devices::bus::{Bus, BusError};
use crate::devices::legacy::serial::{SerialError, StdinForwarder};
use crate::devices::legacy::{cmos, i8042, serial, Cmos, SerialDevice, I8042};
use crate::loader::{self, LoaderError};
use crate::memory::{self, MemoryError};
use crate::vcpu::{self, BootEntry, Vcpu, VcpuError, VcpuStop};
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
enum VmEvent {
    /// The i8042 reset line was pulsed.
    Reset,
    /// A vCPU loop ended.
    Vcpu(u8, Result<VcpuStop, VcpuError>),
}

struct Devices {
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    _stdin: Option<StdinForwarder>,
}

fn device_err(what: &'static str) -> impl FnOnce(DeviceError) -> VmmError {
    move |e| VmmError::Device(what, e)
}

fn setup_devices(config: &VmConfig, vm: &Vm, events: Sender<VmEvent>) -> Result<Devices, VmmError> {
    let mut pio = Bus::new();

    let irq = EventFd::new(libc::EFD_NONBLOCK)
        .map_err(|e| VmmError::Device("serial console", DeviceError::EventFd(e)))?;
    if vm.has_irqchip() {
        vm.fd()
            .register_irqfd(&irq, serial::COM1_IRQ)
            .map_err(|source| {
                VmmError::Device(
                    "serial console",
                    DeviceError::Irqfd {
                        gsi: serial::COM1_IRQ,
                        source,
                    },
                )
            })?;
    }
    let out = config
        .console
        .open()
        .map_err(|e| VmmError::Device("serial console", e.into()))?;
    let com1 = Arc::new(Mutex::new(SerialDevice::new(irq, out)));
    pio.insert(com1.clone(), serial::COM1_BASE, serial::COM_PORT_LEN)
        .map_err(|e| VmmError::Device("serial console", e.into()))?;
    let stdin = if config.console_input {
        Some(StdinForwarder::start(com1).map_err(|e| VmmError::Device("console input", e.into()))?)
    } else {
        None
    };

    let reset = Mutex::new(events);
    let i8042 = I8042::new(move || {
        let _ = crate::devices::bus::lock(&reset).send(VmEvent::Reset);
    });
    pio.insert(
        Arc::new(Mutex::new(i8042)),
        i8042::I8042_BASE,
        i8042::I8042_LEN,
    )
    .map_err(|e| device_err("i8042 controller")(e.into()))?;

    let mem = vm.memory();
    let last = mem.last_addr().raw_value() + 1;
    let below = last.min(FIRST_ADDR_PAST_32BITS);
    let above = last.saturating_sub(FIRST_ADDR_PAST_32BITS);
    pio.insert(
        Arc::new(Mutex::new(Cmos::new(below, above))),
        cmos::CMOS_BASE,
        cmos::CMOS_LEN,
    )
    .map_err(|e| device_err("CMOS")(e.into()))?;

    Ok(Devices {
        pio: Arc::new(pio),
        mmio: Arc::new(Bus::new()),
        _stdin: stdin,
    })
}

/// Loads kernel, initrd and command line and writes the boot information;
/// returns the boot vCPU's entry.
fn load_boot(config: &VmConfig, vm: &Vm) -> Result<BootEntry, VmmError> {
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
    let boot_info = match kernel.protocol {
        BootProtocol::Pvh => {
            boot::write_pvh_start_info(mem, initrd).map_err(VmmError::Boot)?;
            PVH_INFO_START
        }
        BootProtocol::Linux64 => {
            boot::write_linux_boot_params(mem, kernel.setup_header, cmdline_len, initrd)
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
    stop: &Arc<AtomicBool>,
    events: Sender<VmEvent>,
) -> Result<JoinHandle<()>, VmmError> {
    let index = vcpu.index();
    let (pio, mmio, stop) = (devices.pio.clone(), devices.mmio.clone(), stop.clone());
    std::thread::Builder::new()
        .name(format!("vessel-vcpu{index}"))
        .spawn(move || {
            let result = vcpu.run_loop(&pio, &mmio, &stop);
            let _ = events.send(VmEvent::Vcpu(index, result));
        })
        .map_err(|e| VmmError::SpawnVcpu(index, e))
}

/// Boots the microVM `config` describes and runs it until the guest ends
/// (reboot, power-off, triple fault) or a vCPU fails. Every vCPU thread has
/// stopped when this returns.
pub fn run_vm(config: VmConfig) -> Result<VmExitReason, VmmError> {
    let memory = memory::create_guest_memory(config.memory_mib).map_err(VmmError::Memory)?;
    let mut vm = Vm::new(memory).map_err(VmmError::Vm)?;
    let max = vm.max_vcpus().min(usize::from(MAX_CPUS));
    if config.vcpus == 0 || usize::from(config.vcpus) > max {
        return Err(VmmError::VcpuCount {
            wanted: usize::from(config.vcpus),
            max,
        });
    }
    vm.setup_irqchip().map_err(VmmError::Vm)?;
    vcpu::install_kick_handler().map_err(|e| VmmError::ConfigureVcpu(0, e))?;
    let boot = load_boot(&config, &vm)?;

    let (events_tx, events) = channel();
    let devices = setup_devices(&config, &vm, events_tx.clone())?;

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

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::with_capacity(vcpus.len());
    let mut outcome = None;
    for vcpu in vcpus {
        match spawn_vcpu(vcpu, &devices, &stop, events_tx.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                outcome = Some(Err(e));
                break;
            }
        }
    }
    drop(events_tx);

    let outcome = match outcome {
        Some(err) => err,
        None => wait_for_end(&events),
    };
    stop_vcpus(&stop, threads);
    outcome
}

/// Waits for the first event that ends the guest.
fn wait_for_end(events: &std::sync::mpsc::Receiver<VmEvent>) -> Result<VmExitReason, VmmError> {
    loop {
        let Ok(event) = events.recv() else {
            // Every vCPU loop ended without saying why: cannot happen, each
            // sends its result; treat it as a halt.
            return Ok(VmExitReason::Halted);
        };
        return match event {
            VmEvent::Reset => Ok(VmExitReason::Reset),
            VmEvent::Vcpu(_, Ok(VcpuStop::Stopped)) => continue,
            VmEvent::Vcpu(_, Ok(VcpuStop::Halted)) => Ok(VmExitReason::Halted),
            VmEvent::Vcpu(_, Ok(VcpuStop::TripleFault)) => Ok(VmExitReason::TripleFault),
            VmEvent::Vcpu(_, Ok(VcpuStop::Reset)) => Ok(VmExitReason::Reset),
            VmEvent::Vcpu(_, Ok(VcpuStop::PowerOff)) => Ok(VmExitReason::PowerOff),
            VmEvent::Vcpu(_, Ok(VcpuStop::Crash)) => Ok(VmExitReason::Crash),
            VmEvent::Vcpu(index, Err(e)) => Err(VmmError::Vcpu(index, e)),
        };
    }
}

/// Tells every vCPU to stop, kicks it out of KVM_RUN, and joins it.
fn stop_vcpus(stop: &AtomicBool, threads: Vec<JoinHandle<()>>) {
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in &threads {
        // A thread that already returned ignores the signal.
        let _ = t.kill(vcpu::kick_signal());
    }
    for t in threads {
        let _ = t.join();
    }
}
