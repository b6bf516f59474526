//! Loading what the guest boots into guest memory: the kernel (an ELF
//! vmlinux, with or without a PVH entry note, or a bzImage; linux-loader
//! parses them), the initrd and the command line.

use std::fs::File;
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::elf::{Error as ElfError, PvhBootCapability};
use linux_loader::loader::{self, BzImage, Elf, KernelLoader};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::arch::x86_64::boot::InitrdRegion;
use crate::arch::x86_64::layout::{CMDLINE_MAX_SIZE, CMDLINE_START, HIMEM_START, MMIO_GAP_START};
use crate::arch::x86_64::regs::BootProtocol;

/// Offset of the 64-bit entry point (`startup_64`) in a bzImage's protected
/// mode code.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
const PAGE_SIZE: u64 = 4096;

/// Errors loading the kernel, initrd or command line.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// A file cannot be opened or read.
    #[error("Cannot read the {what} {}", path.display())]
    Open {
        /// "kernel" or "initrd".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel is neither an ELF vmlinux nor a bzImage, or does not fit.
    #[error("{} is not a kernel vessel can boot (expected an x86_64 ELF vmlinux or a bzImage)", path.display())]
    Kernel {
        /// The file.
        path: PathBuf,
        /// linux-loader's reason.
        #[source]
        source: loader::Error,
    },
    /// The initrd does not fit between the kernel and the end of low memory.
    #[error("The initrd {} ({size} bytes) does not fit in guest memory above the kernel ({available} bytes free)", path.display())]
    InitrdTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Room there is.
        available: u64,
    },
    /// Copying the initrd into guest memory failed.
    #[error("Cannot copy the initrd {} into guest memory", path.display())]
    InitrdCopy {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// The command line is invalid or too long.
    #[error("Invalid kernel command line {cmdline:?}")]
    Cmdline {
        /// The command line.
        cmdline: String,
        /// The cause.
        #[source]
        source: linux_loader::cmdline::Error,
    },
    /// Writing the command line into guest memory failed.
    #[error("Cannot write the kernel command line into guest memory")]
    CmdlineWrite(#[source] loader::Error),
}

/// Where and how to enter a loaded kernel.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// Entry protocol.
    pub protocol: BootProtocol,
    /// Entry point.
    pub entry: GuestAddress,
    /// First byte past the kernel image in guest memory.
    pub kernel_end: u64,
    /// A bzImage's setup header, to copy into the zero page.
    pub setup_header: Option<setup_header>,
}

/// Loads the kernel at `path`: PVH entry when the ELF has the note, else the
/// 64-bit Linux entry.
pub fn load_kernel(mem: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, LoaderError> {
    let mut file = File::open(path).map_err(|source| LoaderError::Open {
        what: "kernel",
        path: path.to_owned(),
        source,
    })?;
    let himem = Some(GuestAddress(HIMEM_START));
    let kernel_err = |source| LoaderError::Kernel {
        path: path.to_owned(),
        source,
    };
    match Elf::load(mem, None, &mut file, himem) {
        Ok(result) => {
            let (protocol, entry) = match result.pvh_boot_cap {
                PvhBootCapability::PvhEntryPresent(addr) => (BootProtocol::Pvh, addr),
                _ => (BootProtocol::Linux64, result.kernel_load),
            };
            Ok(LoadedKernel {
                protocol,
                entry,
                kernel_end: result.kernel_end,
                setup_header: None,
            })
        }
        Err(loader::Error::Elf(ElfError::InvalidElfMagicNumber)) => {
            let result = BzImage::load(mem, None, &mut file, himem).map_err(kernel_err)?;
            Ok(LoadedKernel {
                protocol: BootProtocol::Linux64,
                entry: result.kernel_load.unchecked_add(BZIMAGE_64BIT_ENTRY_OFFSET),
                kernel_end: result.kernel_end,
                setup_header: result.setup_header,
            })
        }
        Err(e) => Err(kernel_err(e)),
    }
}

/// Copies the initrd at `path` to the top of low memory (page aligned,
/// above `kernel_end`).
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
) -> Result<InitrdRegion, LoaderError> {
    let open_err = |source| LoaderError::Open {
        what: "initrd",
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    let low_end = (mem.last_addr().raw_value() + 1).min(MMIO_GAP_START);
    let floor = kernel_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let available = low_end.saturating_sub(floor);
    let too_large = || LoaderError::InitrdTooLarge {
        path: path.to_owned(),
        size,
        available,
    };
    let start = low_end
        .checked_sub(size)
        .map(|a| a & !(PAGE_SIZE - 1))
        .filter(|a| *a >= floor)
        .ok_or_else(too_large)?;
    let len = usize::try_from(size).map_err(|_| too_large())?;
    mem.read_exact_volatile_from(GuestAddress(start), &mut file, len)
        .map_err(|source| LoaderError::InitrdCopy {
            path: path.to_owned(),
            source,
        })?;
    Ok(InitrdRegion {
        address: GuestAddress(start),
        size: len,
    })
}

/// Writes the command line at [`CMDLINE_START`]; returns its length
/// without the NUL.
pub fn load_cmdline(mem: &GuestMemoryMmap, cmdline: &str) -> Result<usize, LoaderError> {
    let cmd =
        Cmdline::try_from(cmdline, CMDLINE_MAX_SIZE).map_err(|source| LoaderError::Cmdline {
            cmdline: cmdline.to_owned(),
            source,
        })?;
    loader::load_cmdline(mem, GuestAddress(CMDLINE_START), &cmd)
        .map_err(LoaderError::CmdlineWrite)?;
    let written = cmd
        .as_cstring()
        .map(|c| c.as_bytes().len())
        .unwrap_or(cmdline.len());
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mem() -> GuestMemoryMmap {
        crate::memory::create_guest_memory(16).expect("memory")
    }

    #[test]
    fn rejects_a_file_that_is_not_a_kernel() {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(&[0u8; 4096]).expect("write");
        let err = load_kernel(&mem(), f.path()).expect_err("not a kernel");
        assert!(matches!(err, LoaderError::Kernel { .. }), "{err:?}");
        assert!(err.to_string().contains("is not a kernel"));
    }

    #[test]
    fn missing_kernel_names_the_path() {
        let err = load_kernel(&mem(), Path::new("/no/such/vmlinux")).expect_err("missing");
        assert!(err.to_string().contains("/no/such/vmlinux"), "{err}");
    }

    #[test]
    fn initrd_goes_to_the_top_of_memory() {
        let m = mem();
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(&[0xab; 5000]).expect("write");
        let region = load_initrd(&m, f.path(), 0x20_0000).expect("initrd");
        assert_eq!(region.size, 5000);
        assert_eq!(region.address.raw_value() % PAGE_SIZE, 0);
        assert!(region.address.raw_value() + 5000 <= 16 << 20);
        let byte: u8 = m.read_obj(region.address).expect("read");
        assert_eq!(byte, 0xab);
    }

    #[test]
    fn initrd_too_large_is_refused() {
        let m = mem();
        let f = tempfile::NamedTempFile::new().expect("temp");
        f.as_file().set_len(15 << 20).expect("size");
        let err = load_initrd(&m, f.path(), 0x20_0000).expect_err("too large");
        assert!(matches!(err, LoaderError::InitrdTooLarge { .. }), "{err:?}");
    }

    #[test]
    fn cmdline_is_written_with_nul() {
        let m = mem();
        let len = load_cmdline(&m, "console=ttyS0 reboot=k").expect("cmdline");
        assert_eq!(len, 22);
        let mut buf = [0u8; 23];
        m.read_slice(&mut buf, GuestAddress(CMDLINE_START))
            .expect("read");
        assert_eq!(&buf, b"console=ttyS0 reboot=k\0");
        let long = "x".repeat(CMDLINE_MAX_SIZE + 1);
        assert!(matches!(
            load_cmdline(&m, &long),
            Err(LoaderError::Cmdline { .. })
        ));
    }
}
