//! Guest memory: anonymous private mappings laid out around the MMIO hole
//! below 4 GiB.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::{FIRST_ADDR_PAST_32BITS, MMIO_GAP_START};

/// Smallest guest vessel builds: the boot structures, the kernel at 1 MiB
/// and some room.
pub const MIN_MEM_MIB: u64 = 2;

/// Errors creating guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size is too small or does not fit the address space.
    #[error("Guest memory of {0} MiB is not possible (minimum {MIN_MEM_MIB} MiB)")]
    BadSize(u64),
    /// Mapping the memory failed.
    #[error("Cannot map {0} MiB of guest memory")]
    Mmap(u64, #[source] vm_memory::mmap::FromRangesError),
}

/// The (start, length) ranges of guest RAM for `size` bytes: one range when
/// it fits below the MMIO hole, two (below the hole and from 4 GiB) when not.
pub fn arch_memory_regions(size: u64) -> Vec<(GuestAddress, usize)> {
    let len = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    if size <= MMIO_GAP_START {
        vec![(GuestAddress(0), len(size))]
    } else {
        vec![
            (GuestAddress(0), len(MMIO_GAP_START)),
            (
                GuestAddress(FIRST_ADDR_PAST_32BITS),
                len(size - MMIO_GAP_START),
            ),
        ]
    }
}

/// Maps `mib` MiB of guest memory.
pub fn create_guest_memory(mib: u64) -> Result<GuestMemoryMmap, MemoryError> {
    let size = mib
        .checked_mul(1 << 20)
        .filter(|_| mib >= MIN_MEM_MIB)
        .ok_or(MemoryError::BadSize(mib))?;
    GuestMemoryMmap::from_ranges(&arch_memory_regions(size)).map_err(|e| MemoryError::Mmap(mib, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

    #[test]
    fn small_memory_is_one_region() {
        let regions = arch_memory_regions(256 << 20);
        assert_eq!(regions, vec![(GuestAddress(0), 256 << 20)]);
    }

    #[test]
    fn large_memory_skips_the_mmio_hole() {
        let regions = arch_memory_regions(4 << 30);
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].1 as u64, MMIO_GAP_START);
        assert_eq!(regions[1].0, GuestAddress(FIRST_ADDR_PAST_32BITS));
        assert_eq!(regions[0].1 + regions[1].1, 4 << 30);
    }

    #[test]
    fn creates_memory_and_rejects_tiny_sizes() {
        let mem = create_guest_memory(16).expect("16 MiB");
        let total: u64 = mem.iter().map(|r| r.len()).sum();
        assert_eq!(total, 16 << 20);
        assert!(matches!(
            create_guest_memory(1),
            Err(MemoryError::BadSize(1))
        ));
    }
}
