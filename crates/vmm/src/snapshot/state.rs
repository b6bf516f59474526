//! What a snapshot's state file holds: the machine's shape, the VM-wide
//! KVM state, every vCPU's state and every device's state. Guest memory is
//! in the separate memory file. Everything here comes from a file and is
//! checked by [`MicrovmState::validate`] before anything is built from it.

use kvm_bindings::{
    kvm_clock_data, kvm_cpuid_entry2, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_mp_state,
    kvm_msr_entry, kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};
use serde::{Deserialize, Serialize};

use super::raw::Raw;
use crate::arch::x86_64::cpuid::MAX_CPUID_ENTRIES;
use crate::config::{MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};
use crate::devices::legacy::cmos::CmosState;
use crate::devices::legacy::i8042::I8042State;
use crate::devices::legacy::serial::SerialState;
use crate::devices::virtio::balloon::persist::BalloonState;
use crate::devices::virtio::block::persist::BlockState;
use crate::devices::virtio::mmio::persist::TransportState;
use crate::devices::virtio::net::persist::NetState;
use crate::devices::virtio::rng::persist::RngState;
use crate::devices::virtio::vsock::persist::VsockState;
use crate::memory::arch_memory_regions;

/// Most MSRs one vCPU's state may list (KVM reports a few hundred at most).
pub const MAX_MSRS: usize = 4096;

/// Everything a restore needs besides guest memory.
#[derive(Debug, Serialize, Deserialize)]
pub struct MicrovmState {
    /// vCPU count and memory layout.
    pub machine: MachineState,
    /// Interrupt controllers, PIT and clock.
    pub vm: VmState,
    /// One entry per vCPU, in index order.
    pub vcpus: Vec<VcpuState>,
    /// Device models.
    pub devices: DevicesState,
}

/// The machine's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    /// Number of vCPUs.
    pub vcpu_count: u8,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// The RAM regions, in the order the memory file holds them.
    pub memory_regions: Vec<MemoryRegionState>,
}

/// One range of guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRegionState {
    /// Guest-physical start.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MachineState {
    /// The shape of a VM with `vcpu_count` vCPUs and `memory_mib` MiB.
    pub fn new(vcpu_count: u8, memory_mib: u64) -> Self {
        let regions = arch_memory_regions(memory_mib.saturating_mul(1 << 20))
            .into_iter()
            .map(|(base, size)| MemoryRegionState {
                base: base.0,
                size: size as u64,
            })
            .collect();
        MachineState {
            vcpu_count,
            memory_mib,
            memory_regions: regions,
        }
    }

    /// Bytes of guest memory (the memory file's size).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_regions.iter().map(|r| r.size).sum()
    }
}

/// The in-kernel interrupt controllers, PIT and clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmState {
    /// PIC master, PIC slave and I/O APIC, when KVM emulates them.
    pub irqchip: Option<IrqchipState>,
    /// The in-kernel PIT.
    pub pit: Option<Raw<kvm_pit_state2>>,
    /// kvmclock (KVM_GET_CLOCK), when KVM can adjust it.
    pub clock: Option<Raw<kvm_clock_data>>,
}

/// KVM_GET_IRQCHIP for each of the three chips.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IrqchipState {
    /// Chip 0.
    pub pic_master: Raw<kvm_irqchip>,
    /// Chip 1.
    pub pic_slave: Raw<kvm_irqchip>,
    /// Chip 2.
    pub ioapic: Raw<kvm_irqchip>,
}

/// The legacy FPU state (KVM_GET_FPU), field by field: kvm-bindings gives
/// `kvm_fpu` no byte image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpuState {
    /// x87 registers.
    pub fpr: [[u8; 16]; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word.
    pub fsw: u16,
    /// Abridged tag word.
    pub ftwx: u8,
    /// Last opcode.
    pub last_opcode: u16,
    /// Last instruction pointer.
    pub last_ip: u64,
    /// Last data pointer.
    pub last_dp: u64,
    /// SSE registers.
    pub xmm: [[u8; 16]; 16],
    /// SSE control and status.
    pub mxcsr: u32,
}

/// One vCPU.
#[derive(Debug, Serialize, Deserialize)]
pub struct VcpuState {
    /// General registers.
    pub regs: Raw<kvm_regs>,
    /// Segment, control and descriptor-table registers.
    pub sregs: Raw<kvm_sregs>,
    /// x87/SSE state.
    pub fpu: FpuState,
    /// The whole XSAVE area, when KVM has KVM_CAP_XSAVE.
    pub xsave: Option<Raw<kvm_xsave>>,
    /// Extended control registers, when KVM has KVM_CAP_XCRS.
    pub xcrs: Option<Raw<kvm_xcrs>>,
    /// Debug registers, when KVM has KVM_CAP_DEBUGREGS.
    pub debugregs: Option<Raw<kvm_debugregs>>,
    /// The local APIC, with an in-kernel irqchip.
    pub lapic: Option<Raw<kvm_lapic_state>>,
    /// Every MSR of KVM's list that this vCPU could read.
    pub msrs: Vec<Raw<kvm_msr_entry>>,
    /// Running, halted, waiting for a SIPI…
    pub mp_state: Raw<kvm_mp_state>,
    /// Pending exceptions, interrupts, NMIs and SMIs.
    pub vcpu_events: Raw<kvm_vcpu_events>,
    /// The CPUID the guest was given.
    pub cpuid: Vec<Raw<kvm_cpuid_entry2>>,
    /// TSC frequency, when KVM reports it.
    pub tsc_khz: Option<u32>,
}

/// The device models' states.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevicesState {
    /// COM1.
    pub serial: SerialState,
    /// The i8042 controller.
    pub i8042: I8042State,
    /// CMOS/RTC.
    pub cmos: CmosState,
    /// Devices on the MMIO bus (virtio), in bus order.
    pub mmio: Vec<VirtioDeviceState>,
}

/// A virtio device on the MMIO bus: where it sits, its transport, and
/// the state of the device behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioDeviceState {
    /// Its name (`block rootfs`, `vsock`, `entropy`…).
    pub id: String,
    /// MMIO base address.
    pub base: u64,
    /// MMIO window length.
    pub len: u64,
    /// Interrupt line.
    pub irq: u32,
    /// Registers, queues, interrupt status, configuration space.
    pub transport: TransportState,
    /// The device's own state, by kind.
    pub device: MmioDeviceState,
}

/// The state of the device behind a virtio-mmio transport, one variant
/// per kind. A new kind appends its variant (postcard numbers variants in
/// order, so existing ones keep their encoding) and bumps
/// [`super::file::FORMAT_VERSION`]; see docs/vmm.md, "Snapshots".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MmioDeviceState {
    /// virtio-blk.
    Block(BlockState),
    /// virtio-rng.
    Rng(RngState),
    /// virtio-vsock.
    Vsock(VsockState),
    /// virtio-net.
    Net(NetState),
    /// virtio-balloon.
    Balloon(BalloonState),
}

impl MmioDeviceState {
    /// The kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            MmioDeviceState::Block(_) => "virtio-blk",
            MmioDeviceState::Rng(_) => "virtio-rng",
            MmioDeviceState::Vsock(_) => "virtio-vsock",
            MmioDeviceState::Net(_) => "virtio-net",
            MmioDeviceState::Balloon(_) => "virtio-balloon",
        }
    }

    /// What can be checked without the host or guest memory.
    fn validate(&self) -> Result<(), String> {
        match self {
            MmioDeviceState::Block(b) => b.validate().map_err(|e| e.to_string()),
            MmioDeviceState::Rng(_) => Ok(()),
            MmioDeviceState::Vsock(v) => v.validate().map_err(|e| e.to_string()),
            MmioDeviceState::Net(n) => n.validate().map_err(|e| e.to_string()),
            MmioDeviceState::Balloon(b) => b.validate().map_err(|e| e.to_string()),
        }
    }
}

/// What [`MicrovmState::validate`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidState(pub String);

fn invalid(msg: String) -> Result<(), InvalidState> {
    Err(InvalidState(msg))
}

impl MicrovmState {
    /// Checks what the file says against vessel's limits, so that nothing
    /// built from it is out of range: vCPU count and list, memory size and
    /// layout, list lengths.
    pub fn validate(&self) -> Result<(), InvalidState> {
        let m = &self.machine;
        if m.vcpu_count == 0 || m.vcpu_count > MAX_VCPUS {
            return invalid(format!(
                "machine.vcpu_count is {}, a microVM has 1 to {MAX_VCPUS}",
                m.vcpu_count
            ));
        }
        if self.vcpus.len() != usize::from(m.vcpu_count) {
            return invalid(format!(
                "{} vCPU states for {} vCPUs",
                self.vcpus.len(),
                m.vcpu_count
            ));
        }
        if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&m.memory_mib) {
            return invalid(format!(
                "machine.memory_mib is {}, vessel accepts {MIN_MEM_MIB} to {MAX_MEM_MIB}",
                m.memory_mib
            ));
        }
        if m.memory_regions != MachineState::new(m.vcpu_count, m.memory_mib).memory_regions {
            return invalid(format!(
                "machine.memory_regions {:?} are not vessel's layout for {} MiB",
                m.memory_regions, m.memory_mib
            ));
        }
        for (i, v) in self.vcpus.iter().enumerate() {
            if v.msrs.len() > MAX_MSRS {
                return invalid(format!("vCPU {i} lists {} MSRs", v.msrs.len()));
            }
            if v.cpuid.is_empty() || v.cpuid.len() > MAX_CPUID_ENTRIES {
                return invalid(format!(
                    "vCPU {i} has {} CPUID entries (1 to {MAX_CPUID_ENTRIES})",
                    v.cpuid.len()
                ));
            }
            if v.lapic.is_some() != self.vm.irqchip.is_some() {
                return invalid(format!(
                    "vCPU {i} has {} local APIC state but the VM {} an irqchip",
                    if v.lapic.is_some() { "a" } else { "no" },
                    if self.vm.irqchip.is_some() {
                        "has"
                    } else {
                        "has no"
                    }
                ));
            }
        }
        self.devices.validate()
    }
}

impl DevicesState {
    fn validate(&self) -> Result<(), InvalidState> {
        self.serial.validate()?;
        self.i8042.validate()?;
        self.cmos.validate()?;
        for d in &self.mmio {
            if let Err(reason) = d.device.validate() {
                return invalid(format!("{} device `{}`: {reason}", d.device.kind(), d.id));
            }
        }
        let mut ranges: Vec<_> = self
            .mmio
            .iter()
            .map(|d| (d.base, d.len, d.device.kind()))
            .collect();
        ranges.sort();
        for (base, len, kind) in &ranges {
            if *len == 0 || base.checked_add(*len).is_none() {
                return invalid(format!("{kind} device at {base:#x}+{len:#x}: bad range"));
            }
        }
        for w in ranges.windows(2) {
            if w[0].0 + w[0].1 > w[1].0 {
                return invalid(format!(
                    "MMIO devices {} at {:#x} and {} at {:#x} overlap",
                    w[0].2, w[0].0, w[1].2, w[1].0
                ));
            }
        }
        Ok(())
    }
}
