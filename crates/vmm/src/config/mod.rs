//! What a caller asks for and what it gets back, and the
//! Firecracker-compatible configuration file that describes it ([`file`]).

pub mod devices;
pub mod file;

use std::path::PathBuf;

use crate::arch::x86_64::cpuid::CpuidMask;
use crate::arch::x86_64::mptable;
use crate::devices::legacy::ConsoleOutput;

/// Most vCPUs a microVM can have (the MP table's limit; KVM may allow fewer,
/// which [`crate::run_vm`] checks).
pub const MAX_VCPUS: u8 = mptable::MAX_CPUS;
/// Smallest guest memory, in MiB.
pub const MIN_MEM_MIB: u64 = crate::memory::MIN_MEM_MIB;
/// Largest guest memory vessel accepts, in MiB (1 TiB): a ceiling against
/// absurd values in untrusted configs; the host may still refuse less.
pub const MAX_MEM_MIB: u64 = 1 << 20;

/// Default kernel command line (Firecracker's, minus `pci=off`'s friends).
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off";

/// A microVM to boot.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Kernel: ELF vmlinux (PVH entry used when present) or bzImage.
    pub kernel: PathBuf,
    /// Optional initrd / initramfs.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub cmdline: String,
    /// Number of vCPUs (1..=254 and at most what KVM allows).
    pub vcpus: u8,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// Where COM1's output goes.
    pub console: ConsoleOutput,
    /// Whether host stdin feeds COM1's input.
    pub console_input: bool,
    /// CPUID bits hidden from the guest.
    pub cpuid_masks: Vec<CpuidMask>,
    /// Whether the vCPU threads (and the console input thread) run under
    /// their seccomp filters ([`crate::seccomp`]). On by default.
    pub seccomp: bool,
    /// Virtio devices ([`devices`]): drives, network interfaces, vsock,
    /// entropy, balloon.
    pub devices: devices::DevicesConfig,
    /// Where flushed metrics go (the config file's `metrics.metrics_path`,
    /// `PUT /metrics`); opened by the controller ([`crate::metrics`]).
    pub metrics_path: Option<PathBuf>,
}

impl VmConfig {
    /// A config for `kernel` with Firecracker's defaults: 1 vCPU, 128 MiB,
    /// console on stdout, no console input.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            initrd: None,
            cmdline: DEFAULT_CMDLINE.to_owned(),
            vcpus: 1,
            memory_mib: 128,
            console: ConsoleOutput::Stdout,
            console_input: false,
            cpuid_masks: Vec::new(),
            seccomp: true,
            devices: devices::DevicesConfig::default(),
            metrics_path: None,
        }
    }
}

/// How the guest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmExitReason {
    /// The guest asked for a reset (i8042 reset line or a KVM reset event):
    /// a microVM ends on reboot.
    Reset,
    /// The guest powered off.
    PowerOff,
    /// A vCPU triple-faulted.
    TripleFault,
    /// The guest reported a crash through KVM.
    Crash,
    /// The boot vCPU halted with nothing to wake it (no in-kernel APIC).
    Halted,
    /// The VMM was told to stop by this signal (SIGTERM, SIGINT).
    Signal(i32),
}

impl VmExitReason {
    /// Whether the guest ended the way a guest should (power-off or reboot).
    pub fn is_clean(self) -> bool {
        matches!(self, VmExitReason::Reset | VmExitReason::PowerOff)
    }

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            VmExitReason::Reset => "reset",
            VmExitReason::PowerOff => "power-off",
            VmExitReason::TripleFault => "triple fault",
            VmExitReason::Crash => "crash",
            VmExitReason::Halted => "halted",
            VmExitReason::Signal(_) => "stopped by a signal",
        }
    }
}
