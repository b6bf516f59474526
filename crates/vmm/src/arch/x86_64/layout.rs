//! Where things live in guest physical memory on x86_64.
//!
//! The layout follows Firecracker's: boot structures in the first 64 KiB,
//! the command line at 128 KiB, the MP table at the end of conventional
//! memory, the ACPI tables in the BIOS area below 1 MiB, the kernel from
//! 1 MiB, and a hole below 4 GiB for MMIO devices and the KVM-internal TSS
//! and identity-map pages.

/// GDT used while booting (four 8-byte entries).
pub const BOOT_GDT_START: u64 = 0x500;
/// Empty IDT used while booting.
pub const BOOT_IDT_START: u64 = 0x520;
/// PVH `hvm_start_info` structure.
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH module list (the initrd), right after `hvm_start_info`.
pub const PVH_MODLIST_START: u64 = 0x6040;
/// PVH memory map table.
pub const PVH_MEMMAP_START: u64 = 0x7000;
/// Linux boot protocol zero page (`struct boot_params`).
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Page map level 4 table.
pub const PML4_START: u64 = 0x9000;
/// Page directory pointer table.
pub const PDPTE_START: u64 = 0xa000;
/// Page directory (2 MiB pages, identity map of the first 1 GiB).
pub const PDE_START: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// Largest command line vessel writes (including the NUL).
pub const CMDLINE_MAX_SIZE: usize = 4096;
/// Start of the extended BIOS data area; conventional RAM ends here, and
/// from here to [`HIMEM_START`] the e820 map says "reserved" (MP table,
/// ACPI tables).
pub const EBDA_START: u64 = 0x9fc00;
/// The MP table is written at the start of the EBDA.
pub const MPTABLE_START: u64 = EBDA_START;
/// The ACPI RSDP, where a PC BIOS leaves it (an OS that is not handed its
/// address searches 0xE0000..0xFFFFF for it); the other ACPI tables follow.
pub const ACPI_START: u64 = 0xe_0000;
/// Start of high memory: kernels are loaded at or above 1 MiB.
pub const HIMEM_START: u64 = 0x10_0000;
/// First address above the 32-bit address space.
pub const FIRST_ADDR_PAST_32BITS: u64 = 1 << 32;
/// Size of the hole below 4 GiB kept for MMIO devices.
pub const MMIO_GAP_SIZE: u64 = 768 << 20;
/// Start of the MMIO hole: RAM below 4 GiB ends here.
pub const MMIO_GAP_START: u64 = FIRST_ADDR_PAST_32BITS - MMIO_GAP_SIZE;
/// Three pages KVM needs for the TSS on Intel (inside the MMIO hole).
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
/// One page KVM needs for the real-mode identity map on Intel.
pub const KVM_IDENTITY_MAP_ADDRESS: u64 = 0xfffb_c000;
/// Address of the I/O APIC as announced in the MP table.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Address of the local APIC as announced in the MP table.
pub const APIC_START: u64 = 0xfee0_0000;
/// Number of interrupt pins on the in-kernel I/O APIC.
pub const IOAPIC_PINS: u8 = 24;
