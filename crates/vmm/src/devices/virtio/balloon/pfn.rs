//! The page lists of the inflate and deflate queues: arrays of 32-bit
//! little-endian page frame numbers of 4 KiB pages, as the driver wrote
//! them, untrusted. An inflated page is given back to the host with
//! `madvise(MADV_DONTNEED)` on vessel's mapping of it: the host frees the
//! page and the guest reads zeroes there next time. Every run of pages is
//! first resolved by vm-memory to a slice of one guest memory region, so a
//! PFN outside guest memory is never turned into a host address; it is
//! counted and skipped.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::devices::virtio::queue::Chain;

/// `VIRTIO_BALLOON_PFN_SHIFT`: PFNs count 4 KiB pages whatever the guest's
/// own page size.
pub const PFN_SHIFT: u32 = 12;
/// Bytes per balloon page.
pub const PAGE_SIZE: u64 = 1 << PFN_SHIFT;
/// Most PFNs taken from one chain (Linux sends at most 256); the rest of
/// a longer array is skipped, so one request cannot keep the device
/// thread busy for long.
pub const MAX_PFNS_PER_CHAIN: usize = 1 << 16;

const PFN_LEN: u64 = 4;

/// What became of one chain's PFNs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PfnReport {
    /// Distinct pages inside guest memory (discarded, on the inflate queue).
    pub pages: u64,
    /// Distinct PFNs outside guest memory, ignored.
    pub outside: u64,
    /// The first of those, for the log line.
    pub first_outside: Option<u32>,
    /// Pages the host refused to discard (madvise failed).
    pub failed: u64,
    /// Bytes after the last whole PFN, ignored.
    pub trailing: u64,
    /// PFNs past [`MAX_PFNS_PER_CHAIN`], ignored.
    pub dropped: u64,
}

impl PfnReport {
    /// Whether the driver sent anything vessel had to ignore.
    pub fn is_clean(&self) -> bool {
        self.outside == 0 && self.failed == 0 && self.trailing == 0 && self.dropped == 0
    }
}

/// Reads the PFN array in the readable part of `chain` (at most
/// [`MAX_PFNS_PER_CHAIN`] of them); the report counts what was skipped.
pub fn read(chain: &Chain, mem: &GuestMemoryMmap) -> (Vec<u32>, PfnReport) {
    let total = chain.readable_len();
    let whole = total / PFN_LEN;
    let take = whole.min(MAX_PFNS_PER_CHAIN as u64);
    let report = PfnReport {
        trailing: total % PFN_LEN,
        dropped: whole - take,
        ..PfnReport::default()
    };
    // `take` is at most MAX_PFNS_PER_CHAIN: the buffer is bounded.
    let mut buf = vec![0u8; usize::try_from(take * PFN_LEN).unwrap_or(0)];
    let n = chain.read_at(mem, 0, &mut buf);
    buf.truncate(n - n % 4);
    let pfns = buf
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (pfns, report)
}

/// Calls `f(first_pfn, count)` for each run of consecutive distinct PFNs
/// (sorting `pfns`).
fn runs(pfns: &mut Vec<u32>, mut f: impl FnMut(u32, u32)) {
    pfns.sort_unstable();
    pfns.dedup();
    let mut iter = pfns.iter().copied();
    let Some(mut start) = iter.next() else {
        return;
    };
    let mut count = 1u32;
    for pfn in iter {
        if Some(pfn) == start.checked_add(count) {
            count += 1;
        } else {
            f(start, count);
            start = pfn;
            count = 1;
        }
    }
    f(start, count);
}

/// Why a range was not discarded.
enum Refused {
    Outside,
    Failed,
}

/// `madvise(MADV_DONTNEED)` on vessel's mapping of `len` bytes at `addr`,
/// if they lie inside one region of guest memory.
fn discard_range(mem: &GuestMemoryMmap, addr: GuestAddress, len: usize) -> Result<(), Refused> {
    // vm-memory resolves the range inside a single mapped region, or fails:
    // a range outside guest memory never reaches madvise.
    let slice = mem.get_slice(addr, len).map_err(|_| Refused::Outside)?;
    let guard = slice.ptr_guard_mut();
    // SAFETY: `guard.as_ptr()` .. + `slice.len()` is part of one guest
    // memory mapping that `mem` keeps alive for the call; page aligned
    // because regions start on page boundaries and `addr` is a whole page.
    // MADV_DONTNEED only drops the pages' contents (the next access reads
    // zeroes); no Rust reference into guest memory exists (vessel touches
    // it only through vm-memory's volatile accessors).
    let rc = unsafe { libc::madvise(guard.as_ptr().cast(), slice.len(), libc::MADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Refused::Failed)
    }
}

/// Discards the guest pages `pfns` name (the inflate queue): runs of
/// consecutive pages go in one call; a run that is not inside one region
/// is taken page by page, and pages outside guest memory are counted in
/// the report and skipped.
pub fn discard(mem: &GuestMemoryMmap, pfns: &mut Vec<u32>, report: &mut PfnReport) {
    let page = |pfn: u32| GuestAddress(u64::from(pfn) << PFN_SHIFT);
    let outside = |report: &mut PfnReport, pfn: u32| {
        report.outside += 1;
        report.first_outside.get_or_insert(pfn);
    };
    runs(pfns, |start, count| {
        // At most 2^32 pages of 4 KiB: fits in 64 bits.
        let len = usize::try_from(u64::from(count) << PFN_SHIFT).unwrap_or(usize::MAX);
        match discard_range(mem, page(start), len) {
            Ok(()) => report.pages += u64::from(count),
            Err(Refused::Failed) => report.failed += u64::from(count),
            Err(Refused::Outside) => {
                for pfn in (0..count).map(|i| start + i) {
                    match discard_range(mem, page(pfn), PAGE_SIZE as usize) {
                        Ok(()) => report.pages += 1,
                        Err(Refused::Failed) => report.failed += 1,
                        Err(Refused::Outside) => outside(report, pfn),
                    }
                }
            }
        }
    });
}

/// Checks the pages `pfns` name against guest memory without touching
/// them (the deflate queue: the guest takes its pages back by using them).
pub fn check(mem: &GuestMemoryMmap, pfns: &mut Vec<u32>, report: &mut PfnReport) {
    runs(pfns, |start, count| {
        for pfn in (0..count).map(|i| start + i) {
            let addr = GuestAddress(u64::from(pfn) << PFN_SHIFT);
            if mem.check_range(addr, PAGE_SIZE as usize) {
                report.pages += 1;
            } else {
                report.outside += 1;
                report.first_outside.get_or_insert(pfn);
            }
        }
    });
}
