//! ACPI tables for x86 guests: RSDP, XSDT, FADT, MADT and DSDT, built with
//! rust-vmm's `acpi_tables` and written into the BIOS area below 1 MiB,
//! which the e820 map marks reserved.
//!
//! Why ACPI next to the MP table: distribution kernels (Debian's cloud
//! kernel among them) are built without `CONFIG_X86_MPPARSE`, so they ignore
//! the MP table and see one CPU; ACPI's MADT is how they find the others.
//! And ACPI is how a Linux guest powers off: the FADT declares a
//! hardware-reduced platform whose sleep control register is vessel's
//! [`AcpiSleep`](crate::devices::legacy::AcpiSleep) device, and the DSDT's
//! `\_S5_` gives the sleep type to write there.
//!
//! The MADT describes what the MP table describes (one local APIC per vCPU
//! with APIC id = vCPU index, the I/O APIC with the id after the last vCPU
//! and GSI base 0, LINT1 as NMI on every CPU). The MP table routes each ISA
//! IRQ to the I/O APIC pin of the same number (IRQ0 to pin 0, as KVM's
//! default routing does), so the MADT has no interrupt source override.

use acpi_tables::fadt::{FADTBuilder, Flags, FADT};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, AmlSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};
use zerocopy::{Immutable, IntoBytes};

use super::dsdt::{self, MmioDevice};
use super::layout::{ACPI_START, APIC_START, HIMEM_START, IOAPIC_START};
use super::mptable::MAX_CPUS;
use crate::devices::legacy::acpi_sleep::{SLEEP_CONTROL_PORT, SLEEP_STATUS_PORT};

/// The OEM id in every table header.
pub const OEM_ID: [u8; 6] = *b"VESSEL";
const OEM_REVISION: u32 = 1;
/// FADT "hypervisor vendor identity": tells the guest whose VMM it runs on.
pub const HYPERVISOR_VENDOR: [u8; 8] = *b"VESSELVM";
/// DSDT revision 2: integers in its AML are 64-bit.
const DSDT_REVISION: u8 = 2;

/// FADT IA-PC boot architecture flags (ACPI 6, table 5.10).
const IAPC_8042: u16 = 1 << 1;
const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
const IAPC_MSI_NOT_SUPPORTED: u16 = 1 << 3;
const IAPC_PCIE_ASPM_CONTROLS: u16 = 1 << 4;
/// What vessel's machine has: an i8042 (its reset line) and a CMOS RTC; no
/// VGA, no MSI, no PCIe.
pub const IAPC_BOOT_ARCH: u16 =
    IAPC_8042 | IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED | IAPC_PCIE_ASPM_CONTROLS;

/// MADT entry type of a local APIC NMI source (ACPI 6, 5.2.12.7).
const MADT_LOCAL_APIC_NMI: u8 = 4;
/// The processor UID that means "every processor".
const ALL_PROCESSORS: u8 = 0xff;
/// Which LINT input of the local APIC carries NMI (as in the MP table).
const NMI_LINT: u8 = 1;

/// Tables start on 16-byte boundaries (the RSDP must).
const TABLE_ALIGN: usize = 16;

/// Errors building or writing the ACPI tables.
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// No vCPUs.
    #[error("A VM needs at least one vCPU")]
    NoCpus,
    /// More vCPUs than the MADT (and the MP table) describes.
    #[error("The ACPI tables describe at most {MAX_CPUS} vCPUs, {0} were asked for")]
    TooManyCpus(u8),
    /// A device's MMIO range is above 4 GiB (the DSDT gives 32-bit ranges).
    #[error("The MMIO device at {0:#x} is above 4 GiB")]
    MmioAbove4G(u64),
    /// The tables do not fit between the RSDP and 1 MiB.
    #[error("The ACPI tables take {0} bytes, more than the BIOS area holds")]
    TooLarge(usize),
    /// Writing them into guest memory.
    #[error("Cannot write the ACPI tables into guest memory")]
    Write(#[source] GuestMemoryError),
}

/// A local APIC NMI structure (MADT type 4); `acpi_tables` has none.
#[repr(C)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct LocalApicNmi {
    kind: u8,
    length: u8,
    processor_uid: u8,
    /// MPS INTI flags: 0 = conforming polarity and trigger mode.
    flags: [u8; 2],
    lint: u8,
}

impl Aml for LocalApicNmi {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(self.as_bytes());
    }
}

fn bytes_of(table: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    table.to_aml_bytes(&mut bytes);
    bytes
}

fn madt(num_cpus: u8) -> Vec<u8> {
    let apic = u32::try_from(APIC_START).unwrap_or(0);
    let mut madt = MADT::new(
        OEM_ID,
        *b"VSSLAPIC",
        OEM_REVISION,
        LocalInterruptController::Address(apic),
    );
    for cpu in 0..num_cpus {
        madt.add_structure(ProcessorLocalApic::new(cpu, cpu, EnabledStatus::Enabled));
    }
    let ioapic = u32::try_from(IOAPIC_START).unwrap_or(0);
    // The MP table's I/O APIC id: the one after the last vCPU's APIC id.
    madt.add_structure(IoApic::new(num_cpus + 1, ioapic, 0));
    madt.add_structure(LocalApicNmi {
        kind: MADT_LOCAL_APIC_NMI,
        length: 6,
        processor_uid: ALL_PROCESSORS,
        flags: [0, 0],
        lint: NMI_LINT,
    });
    bytes_of(&madt)
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, *b"VSSLFACP", OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        // Power and sleep buttons, if any, would be devices in the DSDT:
        // a hardware-reduced platform has no fixed-feature buttons.
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    fadt.iapc_boot_arch = IAPC_BOOT_ARCH.into();
    fadt.sleep_control_reg = GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(SLEEP_CONTROL_PORT),
    );
    fadt.sleep_status_reg = GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(SLEEP_STATUS_PORT),
    );
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(HYPERVISOR_VENDOR).into();
    bytes_of(&fadt.finalize())
}

fn dsdt(virtio: &[MmioDevice]) -> Result<Vec<u8>, AcpiError> {
    let aml = dsdt::aml(virtio)?;
    let mut table = Sdt::new(
        *b"DSDT",
        36,
        DSDT_REVISION,
        OEM_ID,
        *b"VSSLDSDT",
        OEM_REVISION,
    );
    table.append_slice(&aml);
    Ok(table.as_slice().to_vec())
}

fn align(offset: usize) -> usize {
    offset.div_ceil(TABLE_ALIGN) * TABLE_ALIGN
}

/// Builds the tables for `num_cpus` vCPUs and the `virtio` devices, laid out
/// from [`ACPI_START`]: the RSDP there, then the XSDT, FADT, MADT and DSDT.
pub fn build(num_cpus: u8, virtio: &[MmioDevice]) -> Result<Vec<u8>, AcpiError> {
    if num_cpus == 0 {
        return Err(AcpiError::NoCpus);
    }
    if num_cpus > MAX_CPUS {
        return Err(AcpiError::TooManyCpus(num_cpus));
    }
    let madt = madt(num_cpus);
    let dsdt = dsdt(virtio)?;
    // Offsets from ACPI_START; the FADT and XSDT have fixed sizes.
    let xsdt_at = align(Rsdp::len());
    let xsdt_len = 36 + 2 * 8;
    let fadt_at = align(xsdt_at + xsdt_len);
    let madt_at = align(fadt_at + FADT::len());
    let dsdt_at = align(madt_at + madt.len());
    let end = dsdt_at + dsdt.len();
    let room = usize::try_from(HIMEM_START - ACPI_START).unwrap_or(0);
    if end > room {
        return Err(AcpiError::TooLarge(end));
    }
    let addr = |offset: usize| ACPI_START + offset as u64;

    let fadt = fadt(addr(dsdt_at));
    let mut xsdt = XSDT::new(OEM_ID, *b"VSSLXSDT", OEM_REVISION);
    xsdt.add_entry(addr(fadt_at));
    xsdt.add_entry(addr(madt_at));
    let xsdt = bytes_of(&xsdt);
    let rsdp = bytes_of(&Rsdp::new(OEM_ID, addr(xsdt_at)));

    let mut out = vec![0u8; end];
    for (at, table) in [
        (0, &rsdp),
        (xsdt_at, &xsdt),
        (fadt_at, &fadt),
        (madt_at, &madt),
        (dsdt_at, &dsdt),
    ] {
        out[at..at + table.len()].copy_from_slice(table);
    }
    Ok(out)
}

/// Writes the tables into guest memory; returns the RSDP's address, for
/// `hvm_start_info.rsdp_paddr` and `boot_params.acpi_rsdp_addr`.
pub fn setup_acpi_tables(
    mem: &GuestMemoryMmap,
    num_cpus: u8,
    virtio: &[MmioDevice],
) -> Result<u64, AcpiError> {
    let bytes = build(num_cpus, virtio)?;
    mem.write_slice(&bytes, GuestAddress(ACPI_START))
        .map_err(AcpiError::Write)?;
    Ok(ACPI_START)
}

#[cfg(test)]
mod tests;
