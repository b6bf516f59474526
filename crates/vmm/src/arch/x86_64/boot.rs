//! The boot information a directly booted kernel reads: the memory map
//! (e820), and either the Linux zero page (`struct boot_params`) or the PVH
//! `hvm_start_info` with its memory map and module list.

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};

use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::layout;

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT_BYTES: u32 = 0x0100_0000;
/// `hvm_start_info.magic`.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// An initrd already copied into guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitrdRegion {
    /// Guest physical address.
    pub address: GuestAddress,
    /// Size in bytes.
    pub size: usize,
}

/// One entry of the guest's memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// Start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`].
    pub kind: u32,
}

/// Errors writing boot information.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The memory map has more entries than the zero page holds.
    #[error("The memory map has {0} entries, more than the zero page holds")]
    TooManyE820Entries(usize),
    /// The command line is longer than the boot protocol allows.
    #[error("The kernel command line is {0} bytes long, more than the boot header allows")]
    CmdlineTooLong(usize),
    /// linux-loader could not write the structures into guest memory.
    #[error("Cannot write the {protocol} boot information into guest memory")]
    Write {
        /// "Linux" or "PVH".
        protocol: &'static str,
        /// The cause.
        #[source]
        source: linux_loader::configurator::Error,
    },
}

/// The guest's memory map: RAM below the EBDA, the EBDA and BIOS area up to
/// 1 MiB reserved (the MP table and the ACPI tables live there), RAM from
/// 1 MiB up to the end of memory or the MMIO hole, and RAM above 4 GiB for
/// the rest.
pub fn e820_map(mem: &GuestMemoryMmap) -> Vec<E820Entry> {
    let ram = |addr: u64, end: u64| E820Entry {
        addr,
        size: end - addr,
        kind: E820_RAM,
    };
    let last = mem.last_addr().raw_value() + 1;
    let mut map = vec![
        ram(0, layout::EBDA_START),
        E820Entry {
            addr: layout::EBDA_START,
            size: layout::HIMEM_START - layout::EBDA_START,
            kind: E820_RESERVED,
        },
    ];
    let low_end = last.min(layout::MMIO_GAP_START);
    if low_end > layout::HIMEM_START {
        map.push(ram(layout::HIMEM_START, low_end));
    }
    if last > layout::FIRST_ADDR_PAST_32BITS {
        map.push(ram(layout::FIRST_ADDR_PAST_32BITS, last));
    }
    map
}

/// Builds the zero page for the 64-bit Linux boot protocol. `header` is the
/// setup header of a bzImage (none for an ELF vmlinux); `rsdp` is the ACPI
/// RSDP's address.
pub fn linux_boot_params(
    mem: &GuestMemoryMmap,
    header: Option<setup_header>,
    cmdline_len: usize,
    initrd: Option<InitrdRegion>,
    rsdp: Option<u64>,
) -> Result<boot_params, BootError> {
    let mut params = boot_params {
        acpi_rsdp_addr: rsdp.unwrap_or(0),
        ..Default::default()
    };
    if let Some(hdr) = header {
        params.hdr = hdr;
    }
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.cmd_line_ptr = u32::try_from(layout::CMDLINE_START).unwrap_or(0);
    params.hdr.cmdline_size =
        u32::try_from(cmdline_len).map_err(|_| BootError::CmdlineTooLong(cmdline_len))?;
    params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT_BYTES;
    if let Some(initrd) = initrd {
        // The initrd lives below the MMIO hole, so it fits in 32 bits.
        params.hdr.ramdisk_image = u32::try_from(initrd.address.raw_value()).unwrap_or(0);
        params.hdr.ramdisk_size = u32::try_from(initrd.size).unwrap_or(0);
    }
    let map = e820_map(mem);
    if map.len() > params.e820_table.len() {
        return Err(BootError::TooManyE820Entries(map.len()));
    }
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind,
        };
    }
    params.e820_entries = u8::try_from(map.len()).unwrap_or(u8::MAX);
    Ok(params)
}

/// Writes the zero page for the 64-bit Linux boot protocol (see
/// [`linux_boot_params`]).
pub fn write_linux_boot_params(
    mem: &GuestMemoryMmap,
    header: Option<setup_header>,
    cmdline_len: usize,
    initrd: Option<InitrdRegion>,
    rsdp: Option<u64>,
) -> Result<(), BootError> {
    let params = linux_boot_params(mem, header, cmdline_len, initrd, rsdp)?;
    let boot = BootParams::new(&params, GuestAddress(layout::ZERO_PAGE_START));
    LinuxBootConfigurator::write_bootparams(&boot, mem).map_err(|source| BootError::Write {
        protocol: "Linux",
        source,
    })
}

/// Writes `hvm_start_info`, the PVH memory map and the module list (the
/// initrd) for the PVH boot protocol; `rsdp` is the ACPI RSDP's address.
pub fn write_pvh_start_info(
    mem: &GuestMemoryMmap,
    initrd: Option<InitrdRegion>,
    rsdp: Option<u64>,
) -> Result<(), BootError> {
    let map: Vec<hvm_memmap_table_entry> = e820_map(mem)
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind,
            reserved: 0,
        })
        .collect();
    let mut start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        cmdline_paddr: layout::CMDLINE_START,
        memmap_paddr: layout::PVH_MEMMAP_START,
        memmap_entries: u32::try_from(map.len()).unwrap_or(0),
        rsdp_paddr: rsdp.unwrap_or(0),
        ..Default::default()
    };
    let modules: Vec<hvm_modlist_entry> = initrd
        .iter()
        .map(|i| hvm_modlist_entry {
            paddr: i.address.raw_value(),
            size: i.size as u64,
            ..Default::default()
        })
        .collect();
    if !modules.is_empty() {
        start_info.nr_modules = u32::try_from(modules.len()).unwrap_or(0);
        start_info.modlist_paddr = layout::PVH_MODLIST_START;
    }
    let mut boot = BootParams::new(&start_info, GuestAddress(layout::PVH_INFO_START));
    boot.set_sections(&map, GuestAddress(layout::PVH_MEMMAP_START));
    if !modules.is_empty() {
        boot.set_modules(&modules, GuestAddress(layout::PVH_MODLIST_START));
    }
    PvhBootConfigurator::write_bootparams(&boot, mem).map_err(|source| BootError::Write {
        protocol: "PVH",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    fn mem(size: u64) -> GuestMemoryMmap {
        let regions = crate::memory::arch_memory_regions(size);
        GuestMemoryMmap::from_ranges(&regions).expect("guest memory")
    }

    #[test]
    fn e820_small_vm() {
        let map = e820_map(&mem(128 << 20));
        assert_eq!(map.len(), 3);
        assert_eq!(
            map[0],
            E820Entry {
                addr: 0,
                size: layout::EBDA_START,
                kind: E820_RAM
            }
        );
        // The MP table and the ACPI tables are in reserved memory.
        assert_eq!(map[1].kind, E820_RESERVED);
        for table in [layout::MPTABLE_START, layout::ACPI_START] {
            assert!((map[1].addr..map[1].addr + map[1].size).contains(&table));
        }
        assert_eq!(map[1].addr + map[1].size, layout::HIMEM_START);
        assert_eq!(map[2].addr, layout::HIMEM_START);
        assert_eq!(map[2].addr + map[2].size, 128 << 20);
        assert_eq!(map[2].kind, E820_RAM);
    }

    #[test]
    fn zero_page_has_magic_cmdline_initrd_and_map() {
        let m = mem(64 << 20);
        let initrd = InitrdRegion {
            address: GuestAddress(0x300_0000),
            size: 4096,
        };
        write_linux_boot_params(&m, None, 20, Some(initrd), Some(0xe0000)).expect("zero page");
        let p: boot_params = m
            .read_obj(GuestAddress(layout::ZERO_PAGE_START))
            .expect("read");
        assert_eq!({ p.hdr.header }, KERNEL_HDR_MAGIC);
        assert_eq!({ p.hdr.boot_flag }, KERNEL_BOOT_FLAG_MAGIC);
        assert_eq!({ p.hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ p.hdr.cmdline_size }, 20);
        assert_eq!({ p.hdr.ramdisk_image }, 0x300_0000);
        assert_eq!({ p.hdr.ramdisk_size }, 4096);
        assert_eq!({ p.acpi_rsdp_addr }, 0xe0000);
        assert_eq!(p.e820_entries, 3);
        let reserved = p.e820_table[1];
        assert_eq!({ reserved.r#type }, E820_RESERVED);
        let high = p.e820_table[2];
        assert_eq!({ high.addr }, layout::HIMEM_START);
        assert_eq!({ high.r#type }, E820_RAM);
    }

    #[test]
    fn pvh_start_info_has_magic_memmap_and_module() {
        let m = mem(64 << 20);
        let initrd = InitrdRegion {
            address: GuestAddress(0x300_0000),
            size: 100,
        };
        write_pvh_start_info(&m, Some(initrd), Some(0xe0000)).expect("start info");
        let info: hvm_start_info = m
            .read_obj(GuestAddress(layout::PVH_INFO_START))
            .expect("read");
        assert_eq!(info.magic, XEN_HVM_START_MAGIC_VALUE);
        assert_eq!(info.memmap_entries, 3);
        assert_eq!(info.rsdp_paddr, 0xe0000);
        assert_eq!(info.nr_modules, 1);
        assert_eq!(info.cmdline_paddr, layout::CMDLINE_START);
        let module: hvm_modlist_entry = m
            .read_obj(GuestAddress(layout::PVH_MODLIST_START))
            .expect("read");
        assert_eq!((module.paddr, module.size), (0x300_0000, 100));
        let reserved: hvm_memmap_table_entry = m
            .read_obj(GuestAddress(layout::PVH_MEMMAP_START + 24))
            .expect("read");
        assert_eq!(reserved.type_, E820_RESERVED);
        let high: hvm_memmap_table_entry = m
            .read_obj(GuestAddress(layout::PVH_MEMMAP_START + 48))
            .expect("read");
        assert_eq!(high.addr, layout::HIMEM_START);
    }
}
