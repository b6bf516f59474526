//! A virtual CPU: `Vcpu::run() -> VmExit`, its boot configuration, and the
//! loop a vCPU thread runs, with a way for another thread to stop it.
//!
//! Stopping: the VMM sets a shared stop flag and sends the vCPU thread a
//! real-time signal. The signal handler sets `immediate_exit` in the
//! thread's `kvm_run` page, so KVM_RUN returns `EINTR` whether the signal
//! lands while the vCPU is in the guest or just before it enters; the loop
//! then sees the flag and returns. Pausing works the same way: a flag,
//! a kick, and the loop parks the thread (see [`control`]).

pub mod control;

use std::cell::Cell;
use std::sync::OnceLock;

use kvm_bindings::{
    kvm_run, CpuId, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use crate::arch::x86_64::cpuid::{filter_cpuid, CpuidMask};
use crate::arch::x86_64::interrupts::{set_lint, InterruptsError};
use crate::arch::x86_64::regs::{self, BootProtocol, RegsError};
use crate::devices::Bus;
use crate::metrics::METRICS;
pub use control::VcpuControl;

/// Errors of a vCPU.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// KVM_CREATE_VCPU failed.
    #[error("KVM_CREATE_VCPU failed")]
    Create(#[source] kvm_ioctls::Error),
    /// KVM_SET_CPUID2 failed.
    #[error("Cannot set the vCPU's CPUID")]
    SetCpuid(#[source] kvm_ioctls::Error),
    /// Setting registers, MSRs or FPU failed.
    #[error("Cannot set the boot state")]
    Regs(#[source] RegsError),
    /// Setting up the local APIC failed.
    #[error("Cannot set up the local APIC")]
    Lapic(#[source] InterruptsError),
    /// KVM_RUN failed.
    #[error("KVM_RUN failed")]
    Run(#[source] kvm_ioctls::Error),
    /// KVM could not emulate a guest instruction (or another internal error).
    #[error("KVM internal error (suberror {suberror}{}) at rip {rip:#x}", if *suberror == kvm_bindings::KVM_INTERNAL_ERROR_EMULATION { ": instruction emulation failed" } else { "" })]
    Internal {
        /// KVM's suberror.
        suberror: u32,
        /// The guest instruction pointer, or 0 if unreadable.
        rip: u64,
    },
    /// The hardware refused to enter the guest.
    #[error("Entering the guest failed (hardware reason {0:#x})")]
    FailEntry(u64),
    /// An exit vessel does not handle.
    #[error("Unhandled vCPU exit: {0}")]
    UnhandledExit(String),
    /// The thread's seccomp filter cannot be installed.
    #[error("Cannot install the vCPU thread's seccomp filter")]
    Seccomp(#[source] crate::seccomp::SeccompError),
    /// The kick signal handler cannot be installed.
    #[error("Cannot install the vCPU kick signal handler")]
    SignalHandler(#[source] vmm_sys_util::errno::Error),
}

/// Why the guest stopped a vCPU, as [`Vcpu::run`] reports it.
#[derive(Debug)]
pub enum VmExit<'a> {
    /// `in`: fill `data` with what the guest reads from `port`.
    IoIn {
        /// The port.
        port: u16,
        /// The bytes to fill.
        data: &'a mut [u8],
    },
    /// `out`: the guest wrote `data` to `port`.
    IoOut {
        /// The port.
        port: u16,
        /// The bytes written.
        data: &'a [u8],
    },
    /// A read of unbacked guest-physical memory.
    MmioRead {
        /// The address.
        addr: u64,
        /// The bytes to fill.
        data: &'a mut [u8],
    },
    /// A write to unbacked guest-physical memory.
    MmioWrite {
        /// The address.
        addr: u64,
        /// The bytes written.
        data: &'a [u8],
    },
    /// `hlt` (only reaches the VMM without an in-kernel local APIC).
    Hlt,
    /// The vCPU shut down: a triple fault.
    Shutdown,
    /// A system event: power-off, reset or crash (KVM_SYSTEM_EVENT_*).
    SystemEvent(u32),
    /// KVM could not go on (suberror in [`Vcpu::internal_error`]).
    InternalError,
    /// Entry failed with this hardware reason.
    FailEntry(u64),
    /// KVM_RUN returned early (a signal or `immediate_exit`).
    Interrupted,
    /// Anything else.
    Other(String),
}

/// How a vCPU's loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuStop {
    /// Another thread asked it to stop.
    Stopped,
    /// The guest halted with no in-kernel APIC to wake it.
    Halted,
    /// Triple fault.
    TripleFault,
    /// The guest asked for a reset through KVM (PSCI-style system event).
    Reset,
    /// The guest asked for power-off through KVM.
    PowerOff,
    /// The guest reported a crash through KVM.
    Crash,
}

/// Boot state for one vCPU.
#[derive(Debug, Clone, Copy)]
pub struct BootEntry {
    /// Which protocol.
    pub protocol: BootProtocol,
    /// Entry point.
    pub entry: u64,
    /// Zero page or `hvm_start_info` address.
    pub boot_info: u64,
}

/// A vCPU.
#[derive(Debug)]
pub struct Vcpu {
    index: u8,
    fd: VcpuFd,
}

thread_local! {
    /// This thread's `kvm_run` page, for the kick signal handler.
    static KVM_RUN_PTR: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// Offset from SIGRTMIN of the signal that kicks a vCPU out of KVM_RUN.
pub const KICK_SIGNAL_OFFSET: i32 = 0;

/// The kick signal number.
pub fn kick_signal() -> i32 {
    SIGRTMIN() + KICK_SIGNAL_OFFSET
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let ptr = KVM_RUN_PTR.with(Cell::get);
    if !ptr.is_null() {
        let field = ptr
            .cast::<u8>()
            .wrapping_add(std::mem::offset_of!(kvm_run, immediate_exit));
        // SAFETY: `field` is the `immediate_exit` byte of this thread's live
        // `kvm_run` mapping, set by `Vcpu::run_loop` before it enters KVM_RUN
        // and cleared before the mapping can go away; a volatile byte store
        // is async-signal-safe.
        unsafe { std::ptr::write_volatile(field, 1) };
    }
}

/// Installs the kick handler (once per process; a failure is reported to
/// every caller).
pub fn install_kick_handler() -> Result<(), VcpuError> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| register_signal_handler(kick_signal(), kick_handler).map_err(|e| e.errno()))
        .map_err(|errno| VcpuError::SignalHandler(vmm_sys_util::errno::Error::new(errno)))
}

impl Vcpu {
    /// Creates vCPU `index` in `vm`.
    pub fn new(vm: &VmFd, index: u8) -> Result<Self, VcpuError> {
        let fd = vm
            .create_vcpu(u64::from(index))
            .map_err(VcpuError::Create)?;
        Ok(Vcpu { index, fd })
    }

    /// The vCPU's index (and APIC id).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The underlying KVM vCPU.
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// Sets CPUID (filtered for this vCPU), MSRs, FPU, local APIC LINTs and,
    /// for the boot vCPU, the registers of `boot`'s entry point.
    pub fn configure(
        &mut self,
        mem: &GuestMemoryMmap,
        supported_cpuid: &CpuId,
        vcpu_count: u8,
        cpuid_masks: &[CpuidMask],
        irqchip: bool,
        boot: Option<BootEntry>,
    ) -> Result<(), VcpuError> {
        let mut cpuid = supported_cpuid.clone();
        filter_cpuid(&mut cpuid, self.index, vcpu_count, cpuid_masks);
        self.fd.set_cpuid2(&cpuid).map_err(VcpuError::SetCpuid)?;
        regs::setup_msrs(&self.fd).map_err(VcpuError::Regs)?;
        regs::setup_fpu(&self.fd).map_err(VcpuError::Regs)?;
        if irqchip {
            set_lint(&self.fd).map_err(VcpuError::Lapic)?;
        }
        if let Some(b) = boot {
            regs::setup_regs(&self.fd, b.protocol, b.entry, b.boot_info)
                .map_err(VcpuError::Regs)?;
            regs::setup_sregs(mem, &self.fd, b.protocol).map_err(VcpuError::Regs)?;
        }
        Ok(())
    }

    /// Runs the guest until it needs the VMM.
    pub fn run(&mut self) -> Result<VmExit<'_>, VcpuError> {
        match self.fd.run() {
            Ok(exit) => Ok(match exit {
                VcpuExit::IoIn(port, data) => VmExit::IoIn { port, data },
                VcpuExit::IoOut(port, data) => VmExit::IoOut { port, data },
                VcpuExit::MmioRead(addr, data) => VmExit::MmioRead { addr, data },
                VcpuExit::MmioWrite(addr, data) => VmExit::MmioWrite { addr, data },
                VcpuExit::Hlt => VmExit::Hlt,
                VcpuExit::Shutdown => VmExit::Shutdown,
                VcpuExit::SystemEvent(kind, _) => VmExit::SystemEvent(kind),
                VcpuExit::InternalError => VmExit::InternalError,
                VcpuExit::FailEntry(reason, _) => VmExit::FailEntry(reason),
                VcpuExit::Intr => VmExit::Interrupted,
                other => VmExit::Other(format!("{other:?}")),
            }),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                Ok(VmExit::Interrupted)
            }
            Err(e) => {
                METRICS.vcpu.failures.inc();
                Err(VcpuError::Run(e))
            }
        }
    }

    /// KVM's suberror for the last [`VmExit::InternalError`].
    pub fn internal_error(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        if run.exit_reason != kvm_bindings::KVM_EXIT_INTERNAL_ERROR {
            return 0;
        }
        // SAFETY: with exit reason KVM_EXIT_INTERNAL_ERROR, `internal` is the
        // union member KVM filled in.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }

    fn rip(&self) -> u64 {
        self.fd.get_regs().map(|r| r.rip).unwrap_or(0)
    }

    /// Runs the guest, routing port I/O to `pio` and MMIO to `mmio`, until
    /// the guest stops or `control` says stop and the thread is kicked (see
    /// the module documentation); parks the thread while `control` says
    /// pause. Call from the thread that owns the vCPU.
    pub fn run_loop(
        &mut self,
        pio: &Bus,
        mmio: &Bus,
        control: &VcpuControl,
    ) -> Result<VcpuStop, VcpuError> {
        install_kick_handler()?;
        let run_ptr: *mut kvm_run = self.fd.get_kvm_run();
        KVM_RUN_PTR.with(|p| p.set(run_ptr));
        let result = self.run_until_stop(pio, mmio, control);
        KVM_RUN_PTR.with(|p| p.set(std::ptr::null_mut()));
        result
    }

    fn run_until_stop(
        &mut self,
        pio: &Bus,
        mmio: &Bus,
        control: &VcpuControl,
    ) -> Result<VcpuStop, VcpuError> {
        loop {
            if control.should_stop() {
                return Ok(VcpuStop::Stopped);
            }
            if control.should_park() {
                if let Some(stop) = self.complete_pending_io(pio, mmio)? {
                    return Ok(stop);
                }
                let index = self.index;
                control.park_serving(index, |job| job(self));
                continue;
            }
            let handled = dispatch(self.run()?, pio, mmio)?;
            if let Some(stop) = self.finish(handled)? {
                return Ok(stop);
            }
        }
    }

    /// Finishes the instruction of the last I/O or MMIO exit, so that a
    /// paused vCPU's registers are after it (a snapshot restored later
    /// would otherwise replay an `out` the device already saw): KVM_RUN
    /// with `immediate_exit` set completes pending I/O and returns at once
    /// (KVM's API documentation). A string instruction may need the VMM
    /// again; those exits are handled until KVM returns `EINTR`.
    fn complete_pending_io(
        &mut self,
        pio: &Bus,
        mmio: &Bus,
    ) -> Result<Option<VcpuStop>, VcpuError> {
        loop {
            self.fd.set_kvm_immediate_exit(1);
            let handled = self.run().and_then(|exit| dispatch(exit, pio, mmio));
            self.fd.set_kvm_immediate_exit(0);
            match handled? {
                Handled::Interrupted => return Ok(None),
                handled => {
                    if let Some(stop) = self.finish(handled)? {
                        return Ok(Some(stop));
                    }
                }
            }
        }
    }

    /// What is left to do after [`dispatch`]: `Some` when the vCPU's run
    /// is over.
    fn finish(&mut self, handled: Handled) -> Result<Option<VcpuStop>, VcpuError> {
        match handled {
            Handled::Continue => Ok(None),
            Handled::Interrupted => {
                self.fd.set_kvm_immediate_exit(0);
                Ok(None)
            }
            Handled::InternalError => {
                let suberror = self.internal_error();
                Err(VcpuError::Internal {
                    suberror,
                    rip: self.rip(),
                })
            }
            Handled::Stop(stop) => Ok(Some(stop)),
        }
    }
}

/// An exit once the buses have seen it.
enum Handled {
    /// Run again.
    Continue,
    /// KVM_RUN returned early (kick or `immediate_exit`).
    Interrupted,
    /// KVM failed internally: report it with the suberror.
    InternalError,
    /// The vCPU's run is over.
    Stop(VcpuStop),
}

/// Routes an exit's I/O to the buses and says what it means; counts it
/// in `vcpu` metrics.
fn dispatch(exit: VmExit<'_>, pio: &Bus, mmio: &Bus) -> Result<Handled, VcpuError> {
    let m = &METRICS.vcpu;
    if matches!(
        exit,
        VmExit::Hlt
            | VmExit::Shutdown
            | VmExit::InternalError
            | VmExit::FailEntry(_)
            | VmExit::Other(_)
    ) {
        m.failures.inc();
    }
    Ok(match exit {
        VmExit::IoIn { port, data } => {
            m.exit_io_in.inc();
            pio.read(u64::from(port), data);
            Handled::Continue
        }
        VmExit::IoOut { port, data } => {
            m.exit_io_out.inc();
            pio.write(u64::from(port), data);
            Handled::Continue
        }
        VmExit::MmioRead { addr, data } => {
            m.exit_mmio_read.inc();
            mmio.read(addr, data);
            Handled::Continue
        }
        VmExit::MmioWrite { addr, data } => {
            m.exit_mmio_write.inc();
            mmio.write(addr, data);
            Handled::Continue
        }
        VmExit::Interrupted => Handled::Interrupted,
        VmExit::InternalError => Handled::InternalError,
        VmExit::Hlt => Handled::Stop(VcpuStop::Halted),
        VmExit::Shutdown => Handled::Stop(VcpuStop::TripleFault),
        VmExit::SystemEvent(KVM_SYSTEM_EVENT_SHUTDOWN) => Handled::Stop(VcpuStop::PowerOff),
        VmExit::SystemEvent(KVM_SYSTEM_EVENT_RESET) => Handled::Stop(VcpuStop::Reset),
        VmExit::SystemEvent(KVM_SYSTEM_EVENT_CRASH) => Handled::Stop(VcpuStop::Crash),
        VmExit::SystemEvent(kind) => {
            m.failures.inc();
            return Err(VcpuError::UnhandledExit(format!("system event {kind}")));
        }
        VmExit::FailEntry(reason) => return Err(VcpuError::FailEntry(reason)),
        VmExit::Other(what) => return Err(VcpuError::UnhandledExit(what)),
    })
}
