//! Initial vCPU state for the two direct-boot entry points: general
//! registers, segment registers with a GDT and (for 64-bit entry) identity
//! page tables written into guest memory, FPU, and MSRs.

use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_regs, kvm_sregs, Msrs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::gdt::{self, kvm_segment_from_gdt};
use super::layout;

/// The two ways vessel enters a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootProtocol {
    /// 64-bit Linux boot protocol: long mode, paging on, `rsi` = zero page.
    Linux64,
    /// PVH: 32-bit protected mode, paging off, `rbx` = `hvm_start_info`.
    Pvh,
}

/// Errors setting up the initial vCPU state.
#[derive(Debug, thiserror::Error)]
pub enum RegsError {
    /// Cannot write the boot GDT, IDT or page tables into guest memory.
    #[error("Cannot write the boot {what} into guest memory")]
    WriteBootTables {
        /// Which structure.
        what: &'static str,
        /// The cause.
        #[source]
        source: GuestMemoryError,
    },
    /// A vCPU register ioctl failed.
    #[error("Cannot {what} of the vCPU")]
    Ioctl {
        /// Which operation.
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// KVM accepted fewer MSRs than vessel sets.
    #[error("KVM accepted {set} of the {wanted} boot MSRs")]
    MsrsPartial {
        /// How many were set.
        set: usize,
        /// How many vessel asked for.
        wanted: usize,
    },
}

fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> RegsError {
    move |source| RegsError::Ioctl { what, source }
}

const X86_CR0_PE: u64 = 1 << 0;
const X86_CR0_ET: u64 = 1 << 4;
const X86_CR0_PG: u64 = 1 << 31;
const X86_CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Sets the general registers for entry at `entry`; `boot_info` is the
/// address of the zero page (Linux) or `hvm_start_info` (PVH).
pub fn setup_regs(
    vcpu: &VcpuFd,
    protocol: BootProtocol,
    entry: u64,
    boot_info: u64,
) -> Result<(), RegsError> {
    let regs = boot_regs(protocol, entry, boot_info);
    vcpu.set_regs(&regs).map_err(ioctl("set the registers"))
}

fn boot_regs(protocol: BootProtocol, entry: u64, boot_info: u64) -> kvm_regs {
    let mut regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        ..Default::default()
    };
    match protocol {
        BootProtocol::Linux64 => {
            regs.rsp = layout::BOOT_STACK_POINTER;
            regs.rbp = layout::BOOT_STACK_POINTER;
            regs.rsi = boot_info;
        }
        BootProtocol::Pvh => regs.rbx = boot_info,
    }
    regs
}

/// Writes the boot GDT, an empty IDT and (for 64-bit entry) identity page
/// tables into guest memory and loads the segment and control registers.
pub fn setup_sregs(
    mem: &GuestMemoryMmap,
    vcpu: &VcpuFd,
    protocol: BootProtocol,
) -> Result<(), RegsError> {
    let mut sregs = vcpu
        .get_sregs()
        .map_err(ioctl("read the special registers"))?;
    configure_segments(mem, &mut sregs, protocol)?;
    if protocol == BootProtocol::Linux64 {
        write_page_tables(mem)?;
        sregs.cr3 = layout::PML4_START;
        sregs.cr4 |= X86_CR4_PAE;
        sregs.cr0 |= X86_CR0_PG;
        sregs.efer |= EFER_LME | EFER_LMA;
    }
    vcpu.set_sregs(&sregs)
        .map_err(ioctl("set the special registers"))
}

fn write_mem<T: vm_memory::ByteValued>(
    mem: &GuestMemoryMmap,
    value: T,
    addr: u64,
    what: &'static str,
) -> Result<(), RegsError> {
    mem.write_obj(value, GuestAddress(addr))
        .map_err(|source| RegsError::WriteBootTables { what, source })
}

fn configure_segments(
    mem: &GuestMemoryMmap,
    sregs: &mut kvm_sregs,
    protocol: BootProtocol,
) -> Result<(), RegsError> {
    let table = gdt::boot_gdt(protocol == BootProtocol::Linux64);
    for (i, entry) in table.iter().enumerate() {
        write_mem(mem, *entry, layout::BOOT_GDT_START + 8 * i as u64, "GDT")?;
    }
    write_mem(mem, 0u64, layout::BOOT_IDT_START, "IDT")?;
    sregs.gdt.base = layout::BOOT_GDT_START;
    sregs.gdt.limit = u16::try_from(std::mem::size_of_val(&table) - 1).unwrap_or(u16::MAX);
    sregs.idt.base = layout::BOOT_IDT_START;
    sregs.idt.limit = 7;

    let code = kvm_segment_from_gdt(table[usize::from(gdt::CODE_INDEX)], gdt::CODE_INDEX);
    let data = kvm_segment_from_gdt(table[usize::from(gdt::DATA_INDEX)], gdt::DATA_INDEX);
    let tss = kvm_segment_from_gdt(table[usize::from(gdt::TSS_INDEX)], gdt::TSS_INDEX);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    // Set, not or-ed into KVM's reset value: that has CD and NW set (caches
    // off), which neither boot protocol asks for (Firecracker sets the same).
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    Ok(())
}

/// Identity-maps the first 1 GiB with 2 MiB pages.
fn write_page_tables(mem: &GuestMemoryMmap) -> Result<(), RegsError> {
    write_mem(mem, layout::PDPTE_START | 0x03, layout::PML4_START, "PML4")?;
    write_mem(mem, layout::PDE_START | 0x03, layout::PDPTE_START, "PDPTE")?;
    for i in 0..512u64 {
        write_mem(mem, (i << 21) | 0x83, layout::PDE_START + i * 8, "PDE")?;
    }
    Ok(())
}

/// x87 and SSE control words as after FNINIT / reset.
pub fn setup_fpu(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(ioctl("set the FPU state"))
}

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MISC_ENABLE_FAST_STRING: u64 = 1;
const MTRR_ENABLE: u64 = 1 << 11;
const MTRR_MEM_TYPE_WB: u64 = 6;

/// The MSRs vessel sets on every vCPU at boot.
pub fn boot_msr_entries() -> Vec<kvm_msr_entry> {
    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    vec![
        entry(MSR_IA32_SYSENTER_CS, 0),
        entry(MSR_IA32_SYSENTER_ESP, 0),
        entry(MSR_IA32_SYSENTER_EIP, 0),
        entry(MSR_STAR, 0),
        entry(MSR_CSTAR, 0),
        entry(MSR_KERNEL_GS_BASE, 0),
        entry(MSR_SYSCALL_MASK, 0),
        entry(MSR_LSTAR, 0),
        entry(MSR_IA32_TSC, 0),
        entry(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        entry(MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_MEM_TYPE_WB),
    ]
}

/// Sets the boot MSRs.
pub fn setup_msrs(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let entries = boot_msr_entries();
    let msrs = Msrs::from_entries(&entries).map_err(|_| RegsError::MsrsPartial {
        set: 0,
        wanted: entries.len(),
    })?;
    let set = vcpu.set_msrs(&msrs).map_err(ioctl("set the MSRs"))?;
    if set != entries.len() {
        return Err(RegsError::MsrsPartial {
            set,
            wanted: entries.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_regs_point_at_zero_page_and_stack() {
        let regs = boot_regs(BootProtocol::Linux64, 0x100_0000, layout::ZERO_PAGE_START);
        assert_eq!(regs.rip, 0x100_0000);
        assert_eq!(regs.rsi, layout::ZERO_PAGE_START);
        assert_eq!(regs.rsp, layout::BOOT_STACK_POINTER);
        assert_eq!(regs.rflags, 2);
    }

    #[test]
    fn pvh_regs_point_at_start_info() {
        let regs = boot_regs(BootProtocol::Pvh, 0x100_0000, layout::PVH_INFO_START);
        assert_eq!(regs.rbx, layout::PVH_INFO_START);
        assert_eq!(regs.rsi, 0);
    }

    #[test]
    fn page_tables_identity_map_first_gib() {
        let mem = vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)])
            .expect("guest memory");
        write_page_tables(&mem).expect("page tables");
        let pml4: u64 = mem
            .read_obj(GuestAddress(layout::PML4_START))
            .expect("read");
        assert_eq!(pml4, layout::PDPTE_START | 3);
        let last: u64 = mem
            .read_obj(GuestAddress(layout::PDE_START + 511 * 8))
            .expect("read");
        assert_eq!(last, (511 << 21) | 0x83);
    }
}
