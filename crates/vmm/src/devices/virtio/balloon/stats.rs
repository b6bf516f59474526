//! The statistics a guest reports on the stats queue (virtio 1.x 5.5.6.3):
//! a buffer of packed `{le16 tag; le64 val}` entries, parsed defensively
//! (a trailing fragment and unknown tags are skipped, the buffer is read
//! up to [`MAX_STATS_BYTES`]), and served with Firecracker's names in
//! `GET /balloon/statistics`.

use serde::Serialize;

/// One entry: a 16-bit tag and a 64-bit value, packed.
pub const STAT_ENTRY_LEN: usize = 10;
/// Most bytes of a stats buffer read (Linux sends 16 entries, 160 bytes;
/// this leaves room for tags to come and bounds a hostile buffer).
pub const MAX_STATS_BYTES: usize = 4096;

/// Tags of the virtio spec, and Linux's additions from 10 on.
pub const VIRTIO_BALLOON_S_SWAP_IN: u16 = 0;
/// Bytes swapped out.
pub const VIRTIO_BALLOON_S_SWAP_OUT: u16 = 1;
/// Major page faults.
pub const VIRTIO_BALLOON_S_MAJFLT: u16 = 2;
/// Minor page faults.
pub const VIRTIO_BALLOON_S_MINFLT: u16 = 3;
/// Free memory, bytes.
pub const VIRTIO_BALLOON_S_MEMFREE: u16 = 4;
/// Total memory, bytes.
pub const VIRTIO_BALLOON_S_MEMTOT: u16 = 5;
/// Available memory, bytes.
pub const VIRTIO_BALLOON_S_AVAIL: u16 = 6;
/// Disk caches, bytes.
pub const VIRTIO_BALLOON_S_CACHES: u16 = 7;
/// Successful hugetlb allocations.
pub const VIRTIO_BALLOON_S_HTLB_PGALLOC: u16 = 8;
/// Failed hugetlb allocations.
pub const VIRTIO_BALLOON_S_HTLB_PGFAIL: u16 = 9;
/// OOM killer invocations.
pub const VIRTIO_BALLOON_S_OOM_KILL: u16 = 10;
/// Allocation stalls.
pub const VIRTIO_BALLOON_S_ALLOC_STALL: u16 = 11;
/// Bytes scanned by kswapd.
pub const VIRTIO_BALLOON_S_ASYNC_SCAN: u16 = 12;
/// Bytes scanned by direct reclaim.
pub const VIRTIO_BALLOON_S_DIRECT_SCAN: u16 = 13;
/// Bytes reclaimed by kswapd.
pub const VIRTIO_BALLOON_S_ASYNC_RECLAIM: u16 = 14;
/// Bytes reclaimed directly.
pub const VIRTIO_BALLOON_S_DIRECT_RECLAIM: u16 = 15;

/// The latest value of each statistic the guest reported; one it never
/// reported is absent (Firecracker keeps the old value of a statistic
/// missing from a later report, and so does vessel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuestStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    swap_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swap_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    major_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minor_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_caches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hugetlb_allocations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hugetlb_failures: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_kill: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alloc_stall: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    async_scan: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_scan: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    async_reclaim: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_reclaim: Option<u64>,
}

impl GuestStats {
    fn slot(&mut self, tag: u16) -> Option<&mut Option<u64>> {
        Some(match tag {
            VIRTIO_BALLOON_S_SWAP_IN => &mut self.swap_in,
            VIRTIO_BALLOON_S_SWAP_OUT => &mut self.swap_out,
            VIRTIO_BALLOON_S_MAJFLT => &mut self.major_faults,
            VIRTIO_BALLOON_S_MINFLT => &mut self.minor_faults,
            VIRTIO_BALLOON_S_MEMFREE => &mut self.free_memory,
            VIRTIO_BALLOON_S_MEMTOT => &mut self.total_memory,
            VIRTIO_BALLOON_S_AVAIL => &mut self.available_memory,
            VIRTIO_BALLOON_S_CACHES => &mut self.disk_caches,
            VIRTIO_BALLOON_S_HTLB_PGALLOC => &mut self.hugetlb_allocations,
            VIRTIO_BALLOON_S_HTLB_PGFAIL => &mut self.hugetlb_failures,
            VIRTIO_BALLOON_S_OOM_KILL => &mut self.oom_kill,
            VIRTIO_BALLOON_S_ALLOC_STALL => &mut self.alloc_stall,
            VIRTIO_BALLOON_S_ASYNC_SCAN => &mut self.async_scan,
            VIRTIO_BALLOON_S_DIRECT_SCAN => &mut self.direct_scan,
            VIRTIO_BALLOON_S_ASYNC_RECLAIM => &mut self.async_reclaim,
            VIRTIO_BALLOON_S_DIRECT_RECLAIM => &mut self.direct_reclaim,
            _ => return None,
        })
    }

    /// The value of `tag`, if the guest reported it.
    pub fn get(&self, tag: u16) -> Option<u64> {
        let mut copy = *self;
        copy.slot(tag).and_then(|s| *s)
    }

    /// Sets `tag` (a snapshot's value); `false` for a tag vessel does not
    /// know.
    pub fn set(&mut self, tag: u16, val: u64) -> bool {
        self.slot(tag).map(|s| *s = Some(val)).is_some()
    }

    /// Every statistic the guest reported, by tag in increasing order (a
    /// snapshot's form: the JSON form skips absent fields, which postcard
    /// cannot).
    pub fn entries(&self) -> Vec<(u16, u64)> {
        (0..=VIRTIO_BALLOON_S_DIRECT_RECLAIM)
            .filter_map(|tag| Some((tag, self.get(tag)?)))
            .collect()
    }
}

/// What one stats buffer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsReport {
    /// Entries with a known tag, applied.
    pub applied: usize,
    /// Entries with a tag vessel does not know, skipped.
    pub unknown: usize,
    /// Bytes after the last whole entry, skipped.
    pub trailing: usize,
}

/// Applies the entries of `buf` (the readable part of a stats chain, at
/// most [`MAX_STATS_BYTES`]) to `stats`.
pub fn apply(buf: &[u8], stats: &mut GuestStats) -> StatsReport {
    let mut report = StatsReport {
        trailing: buf.len() % STAT_ENTRY_LEN,
        ..StatsReport::default()
    };
    for entry in buf.chunks_exact(STAT_ENTRY_LEN) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let mut val = [0u8; 8];
        val.copy_from_slice(&entry[2..]);
        match stats.slot(tag) {
            Some(slot) => {
                *slot = Some(u64::from_le_bytes(val));
                report.applied += 1;
            }
            None => report.unknown += 1,
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u16, val: u64) -> Vec<u8> {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend_from_slice(&val.to_le_bytes());
        e
    }

    #[test]
    fn entries_apply_unknown_tags_and_fragments_are_skipped() {
        let mut buf = entry(VIRTIO_BALLOON_S_MEMFREE, 7 << 20);
        buf.extend(entry(0x7777, 1));
        buf.extend(entry(VIRTIO_BALLOON_S_DIRECT_RECLAIM, 3));
        buf.extend([VIRTIO_BALLOON_S_SWAP_IN as u8, 0, 9]); // a truncated entry
        let mut stats = GuestStats::default();
        let report = apply(&buf, &mut stats);
        assert_eq!(
            report,
            StatsReport {
                applied: 2,
                unknown: 1,
                trailing: 3
            }
        );
        assert_eq!(stats.get(VIRTIO_BALLOON_S_MEMFREE), Some(7 << 20));
        assert_eq!(stats.get(VIRTIO_BALLOON_S_DIRECT_RECLAIM), Some(3));
        assert_eq!(
            stats.get(VIRTIO_BALLOON_S_SWAP_IN),
            None,
            "fragment ignored"
        );
        let json = serde_json::to_value(stats).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"free_memory": 7u64 << 20, "direct_reclaim": 3})
        );
    }

    #[test]
    fn a_later_report_keeps_what_it_does_not_mention() {
        let mut stats = GuestStats::default();
        apply(&entry(VIRTIO_BALLOON_S_MAJFLT, 1), &mut stats);
        apply(&entry(VIRTIO_BALLOON_S_MINFLT, 2), &mut stats);
        apply(&entry(VIRTIO_BALLOON_S_MAJFLT, 5), &mut stats);
        assert_eq!(stats.get(VIRTIO_BALLOON_S_MAJFLT), Some(5));
        assert_eq!(stats.get(VIRTIO_BALLOON_S_MINFLT), Some(2));
    }

    #[test]
    fn empty_short_and_repeated_buffers() {
        let mut stats = GuestStats::default();
        assert_eq!(apply(&[], &mut stats), StatsReport::default());
        assert_eq!(apply(&[1; 9], &mut stats).trailing, 9);
        assert_eq!(stats, GuestStats::default());
        // The same tag many times: the last one wins, nothing grows.
        let buf: Vec<u8> = (0..400u64)
            .flat_map(|v| entry(VIRTIO_BALLOON_S_AVAIL, v))
            .collect();
        assert_eq!(apply(&buf, &mut stats).applied, 400);
        assert_eq!(stats.get(VIRTIO_BALLOON_S_AVAIL), Some(399));
    }
}
