//! A hostile driver against the balloon: PFN arrays of odd lengths, PFNs
//! outside guest memory, huge and malformed chains, stats buffers with
//! fragments; and the handle's target, statistics and interval rules.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::pfn::{self, PfnReport, MAX_PFNS_PER_CHAIN, PAGE_SIZE};
use super::stats::{VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_SWAP_IN};
use super::*;
use crate::config::devices::BalloonConfig;
use crate::devices::virtio::interrupt::IrqLine;
use crate::devices::virtio::queue::tests::{Driver, INDIRECT, NEXT};
use crate::devices::virtio::queue::MAX_SEGMENTS;
use crate::devices::virtio::worker::Activation;

const PATTERN: u64 = 0x5a5a_1234_abcd_0001;
/// Where the PFN arrays and stats buffers go.
const LIST: u64 = 0x10000;
/// First page the tests inflate (inside the 1 MiB of the driver).
const PAGES: u64 = 0x80000;

fn balloon(stats_polling_interval_s: u16) -> (DeviceInfo, BalloonBackend, BalloonHandle) {
    balloon_with(
        stats_polling_interval_s,
        Arc::new(Interrupt::new(IrqLine::None)),
    )
}

fn balloon_with(
    stats_polling_interval_s: u16,
    irq: Arc<Interrupt>,
) -> (DeviceInfo, BalloonBackend, BalloonHandle) {
    let config = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: true,
        stats_polling_interval_s,
    };
    create(&config, irq).expect("balloon")
}

/// Hands the driver's queue to `backend` as queue `index` (the others are
/// left unready), with `features` accepted.
fn activate(d: &mut Driver, backend: &mut BalloonBackend, index: usize, features: u64) {
    let mut queues: Vec<Queue> = (0..3).map(|_| Queue::new(16).expect("queue")).collect();
    queues[index] = std::mem::replace(&mut d.queue, Queue::new(16).expect("queue"));
    backend.take_queues(Activation {
        mem: d.mem.clone(),
        queues,
        features,
    });
}

fn write_pfns(d: &Driver, at: u64, pfns: &[u32], extra: &[u8]) -> u32 {
    let mut bytes: Vec<u8> = pfns.iter().flat_map(|p| p.to_le_bytes()).collect();
    bytes.extend_from_slice(extra);
    d.mem.write_slice(&bytes, GuestAddress(at)).expect("list");
    bytes.len() as u32
}

fn fill_pages(mem: &GuestMemoryMmap, first: u64, n: u64) {
    for i in 0..n {
        let at = GuestAddress(first + i * PAGE_SIZE);
        mem.write_obj(PATTERN + i, at).expect("pattern");
        mem.write_obj(PATTERN, GuestAddress(at.0 + PAGE_SIZE - 8))
            .expect("pattern");
    }
}

fn page_word(mem: &GuestMemoryMmap, addr: u64) -> u64 {
    mem.read_obj(GuestAddress(addr)).expect("read")
}

#[test]
fn inflate_discards_pages_inside_memory_and_ignores_the_rest() {
    let mut d = Driver::new();
    let (_, mut backend, handle) = balloon(0);
    activate(&mut d, &mut backend, INFLATE_QUEUE, VIRTIO_F_VERSION_1);
    fill_pages(&d.mem, PAGES, 4);
    let first = (PAGES >> 12) as u32;
    // Pages 0, 1 and 3 (1 twice), two PFNs outside the 1 MiB, and two
    // bytes of a PFN that is not there.
    let len = write_pfns(
        &d,
        LIST,
        &[first + 3, first, 0x100, first + 1, u32::MAX, first + 1],
        &[0x80, 0],
    );
    d.chain(0, &[(LIST, len, false)]);
    d.publish(0);
    backend.inflate();
    assert_eq!(d.used(), vec![(0, 0)]);
    for (page, kept) in [(0, false), (1, false), (2, true), (3, false)] {
        let base = PAGES + page * PAGE_SIZE;
        let want = |v| if kept { v } else { 0 };
        assert_eq!(page_word(&d.mem, base), want(PATTERN + page), "page {page}");
        assert_eq!(
            page_word(&d.mem, base + PAGE_SIZE - 8),
            want(PATTERN),
            "page {page}"
        );
    }
    assert_eq!(handle.warnings(), 1, "one line for the chain");
    // The driver's rings and lists are untouched.
    assert_eq!(page_word(&d.mem, LIST) as u32, first + 3);
}

#[test]
fn pfn_runs_across_a_hole_in_guest_memory_stop_at_its_edges() {
    // Two regions with a hole between them, as below and above the MMIO
    // gap: a run of PFNs through the hole discards only guest pages.
    let mem = GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), 1 << 20),
        (GuestAddress(2 << 20), 1 << 20),
    ])
    .expect("memory");
    fill_pages(&mem, 0xff000, 1);
    fill_pages(&mem, 2 << 20, 1);
    fill_pages(&mem, (2 << 20) + PAGE_SIZE, 1);
    let mut pfns: Vec<u32> = (0xff..=0x200).rev().collect();
    let mut report = PfnReport::default();
    pfn::discard(&mem, &mut pfns, &mut report);
    assert_eq!(report.pages, 2);
    assert_eq!(report.outside, 0x100);
    assert_eq!(report.first_outside, Some(0x100));
    assert_eq!(page_word(&mem, 0xff000), 0);
    assert_eq!(page_word(&mem, 2 << 20), 0);
    assert_eq!(
        page_word(&mem, (2 << 20) + PAGE_SIZE),
        PATTERN,
        "0x201 kept"
    );
    // The top of the PFN space, and a run that wraps at u32::MAX.
    let mut pfns = vec![u32::MAX, u32::MAX - 1, 0];
    let mut report = PfnReport::default();
    pfn::discard(&mem, &mut pfns, &mut report);
    assert_eq!((report.pages, report.outside), (1, 2));
}

#[test]
fn odd_lengths_across_segments_and_empty_lists() {
    let mut d = Driver::new();
    let (_, mut backend, handle) = balloon(0);
    activate(&mut d, &mut backend, INFLATE_QUEUE, VIRTIO_F_VERSION_1);
    fill_pages(&d.mem, PAGES, 2);
    let first = (PAGES >> 12) as u32;
    let pfns: Vec<u8> = [first, first + 1]
        .iter()
        .flat_map(|p| p.to_le_bytes())
        .collect();
    // The array split 3 + 5 bytes over two buffers: still two PFNs.
    d.mem
        .write_slice(&pfns[..3], GuestAddress(LIST))
        .expect("w");
    d.mem
        .write_slice(&pfns[3..], GuestAddress(LIST + 0x100))
        .expect("w");
    d.chain(0, &[(LIST, 3, false), (LIST + 0x100, 5, false)]);
    d.publish(0);
    // An empty list, a 3-byte list, a writable-only chain.
    d.chain(2, &[(LIST, 0, false)]);
    d.publish(2);
    d.chain(3, &[(LIST, 3, false)]);
    d.publish(3);
    d.chain(4, &[(LIST, 8, true)]);
    d.publish(4);
    backend.inflate();
    assert_eq!(d.used(), vec![(0, 0), (2, 0), (3, 0), (4, 0)]);
    assert_eq!(page_word(&d.mem, PAGES), 0);
    assert_eq!(page_word(&d.mem, PAGES + PAGE_SIZE), 0);
    assert_eq!(handle.warnings(), 1, "only the 3-byte list is odd");
}

#[test]
fn huge_and_malformed_chains_are_bounded_and_the_device_goes_on() {
    let mut d = Driver::new();
    let (_, mut backend, handle) = balloon(0);
    activate(&mut d, &mut backend, INFLATE_QUEUE, VIRTIO_F_VERSION_1);
    // 512 KiB of PFN 0: twice the per-chain limit.
    d.chain(0, &[(0, 512 << 10, false)]);
    d.publish(0);
    // A loop, and an indirect table longer than a chain may be.
    d.desc(1, LIST, 4, NEXT, 1);
    d.publish(1);
    let table = 0x60000;
    let n = MAX_SEGMENTS as u16 + 1;
    for i in 0..n {
        d.desc_at(table, i, LIST, 4, NEXT, i + 1);
    }
    d.desc_at(table, n - 1, LIST, 4, 0, 0);
    d.desc(2, table, u32::from(n) * 16, INDIRECT, 0);
    d.publish(2);
    // A list outside guest memory.
    d.chain(3, &[(4 << 20, 4, false)]);
    d.publish(3);
    // Then an honest one.
    fill_pages(&d.mem, PAGES, 1);
    let len = write_pfns(&d, LIST, &[(PAGES >> 12) as u32], &[]);
    d.chain(4, &[(LIST, len, false)]);
    d.publish(4);
    backend.inflate();
    assert_eq!(d.used(), vec![(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]);
    assert_eq!(page_word(&d.mem, PAGES), 0, "the honest chain was served");
    assert_eq!(handle.warnings(), 1, "the over-long list");
    let mut report = PfnReport::default();
    let mut pfns = vec![0u32; MAX_PFNS_PER_CHAIN];
    pfn::discard(&d.mem, &mut pfns, &mut report);
    assert_eq!(report.pages, 1, "duplicates count once");
}

#[test]
fn deflate_returns_lists_without_touching_pages() {
    let mut d = Driver::new();
    let (_, mut backend, handle) = balloon(0);
    activate(&mut d, &mut backend, DEFLATE_QUEUE, VIRTIO_F_VERSION_1);
    fill_pages(&d.mem, PAGES, 1);
    let len = write_pfns(&d, LIST, &[(PAGES >> 12) as u32, 0x7fff_ffff], &[]);
    d.chain(0, &[(LIST, len, false)]);
    d.publish(0);
    backend.deflate();
    assert_eq!(d.used(), vec![(0, 0)]);
    assert_eq!(page_word(&d.mem, PAGES), PATTERN);
    assert_eq!(handle.warnings(), 1, "the PFN outside memory");
}

fn stat(tag: u16, val: u64) -> Vec<u8> {
    let mut e = tag.to_le_bytes().to_vec();
    e.extend_from_slice(&val.to_le_bytes());
    e
}

#[test]
fn stats_buffers_are_parsed_held_and_given_back_on_poll() {
    let mut d = Driver::new();
    let (info, mut backend, handle) = balloon(5);
    assert_eq!(info.queue_sizes.len(), 3);
    assert_ne!(info.features & VIRTIO_BALLOON_F_STATS_VQ, 0);
    activate(
        &mut d,
        &mut backend,
        STATS_QUEUE,
        VIRTIO_F_VERSION_1 | VIRTIO_BALLOON_F_STATS_VQ,
    );
    // Two entries split 7 + 13 bytes over two buffers, then a truncated
    // third entry.
    let mut buf = stat(VIRTIO_BALLOON_S_MEMFREE, 12 << 20);
    buf.extend(stat(VIRTIO_BALLOON_S_MINFLT, 42));
    d.mem.write_slice(&buf[..7], GuestAddress(LIST)).expect("w");
    d.mem
        .write_slice(&buf[7..], GuestAddress(LIST + 0x100))
        .expect("w");
    d.mem
        .write_slice(
            &stat(VIRTIO_BALLOON_S_SWAP_IN, 9)[..5],
            GuestAddress(LIST + 0x200),
        )
        .expect("w");
    d.chain(
        0,
        &[
            (LIST, 7, false),
            (LIST + 0x100, 13, false),
            (LIST + 0x200, 5, false),
        ],
    );
    d.publish(0);
    backend.stats();
    assert!(d.used().is_empty(), "the device holds the buffer");
    let s = handle.statistics().expect("stats on");
    assert_eq!(s.guest.get(VIRTIO_BALLOON_S_MEMFREE), Some(12 << 20));
    assert_eq!(s.guest.get(VIRTIO_BALLOON_S_MINFLT), Some(42));
    assert_eq!(s.guest.get(VIRTIO_BALLOON_S_SWAP_IN), None);
    assert_eq!(handle.warnings(), 1, "the fragment");
    let json = serde_json::to_value(s).expect("json");
    assert_eq!(json["target_pages"], 256);
    assert_eq!(json["target_mib"], 1);
    assert_eq!(json["actual_pages"], 0);
    assert_eq!(json["free_memory"], 12 << 20);
    assert!(json.get("swap_in").is_none(), "{json}");

    // A second buffer gives the first back; a poll gives the second back.
    d.mem
        .write_slice(&stat(VIRTIO_BALLOON_S_MINFLT, 43), GuestAddress(LIST))
        .expect("w");
    d.chain(4, &[(LIST, 10, false)]);
    d.publish(4);
    backend.stats();
    assert_eq!(d.used(), vec![(0, 0)]);
    backend.poll_stats();
    assert_eq!(d.used(), vec![(0, 0), (4, 0)]);
    backend.poll_stats();
    assert_eq!(d.used().len(), 2, "nothing held, nothing returned");
    assert_eq!(
        handle
            .statistics()
            .expect("stats")
            .guest
            .get(VIRTIO_BALLOON_S_MINFLT),
        Some(43)
    );
    // Buffers outside memory or without readable bytes.
    d.chain(5, &[(8 << 20, 10, false)]);
    d.publish(5);
    d.chain(6, &[(LIST, 10, true)]);
    d.publish(6);
    backend.stats();
    assert_eq!(d.used(), vec![(0, 0), (4, 0), (5, 0)]);
    backend.poll_stats();
    assert_eq!(d.used(), vec![(0, 0), (4, 0), (5, 0), (6, 0)]);
}

#[test]
fn a_driver_without_the_stats_queue_is_served_without_it() {
    let mut d = Driver::new();
    let (_, mut backend, _handle) = balloon(5);
    activate(&mut d, &mut backend, STATS_QUEUE, VIRTIO_F_VERSION_1);
    d.chain(0, &[(LIST, 10, false)]);
    d.publish(0);
    backend.stats();
    backend.poll_stats();
    assert!(d.used().is_empty(), "the queue was not negotiated");
}

#[test]
fn target_changes_interrupt_only_a_running_driver() {
    let irq = Arc::new(Interrupt::new(IrqLine::None));
    let (info, mut backend, handle) = balloon_with(0, irq.clone());
    assert_eq!(info.device_type, 5);
    assert_eq!(info.queue_sizes.len(), 2);
    assert_eq!(
        info.features,
        VIRTIO_F_VERSION_1 | VIRTIO_BALLOON_F_DEFLATE_ON_OOM
    );
    let generation = info.config.generation();
    handle.set_target_mib(3);
    assert_eq!(handle.target_pages(), 768);
    assert_eq!(info.config.generation(), generation + 1);
    assert_eq!(irq.status(), 0, "no driver yet");
    let mut d = Driver::new();
    activate(&mut d, &mut backend, INFLATE_QUEUE, VIRTIO_F_VERSION_1);
    handle.set_target_mib(0);
    assert_eq!(handle.target_pages(), 0);
    assert_eq!(
        irq.status(),
        virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_CONFIG
    );
    // The driver writes `actual`, and nothing else.
    info.config
        .write(ACTUAL_OFFSET as u64, &300u32.to_le_bytes());
    info.config
        .write(NUM_PAGES_OFFSET as u64, &9u32.to_le_bytes());
    assert_eq!((handle.target_pages(), handle.actual_pages()), (0, 300));
    assert_eq!(handle.statistics(), Err(BalloonUpdateError::StatsDisabled));
    assert_eq!(
        handle.set_polling_interval_s(1),
        Err(BalloonUpdateError::StatsToggle { enabled: false })
    );
    assert_eq!(handle.set_polling_interval_s(0), Ok(()));
}

#[test]
fn the_polling_interval_changes_but_statistics_stay_on() {
    let (_, _backend, handle) = balloon(5);
    assert_eq!(handle.polling_interval_s(), 5);
    assert_eq!(
        handle.set_polling_interval_s(0),
        Err(BalloonUpdateError::StatsToggle { enabled: true })
    );
    assert_eq!(handle.set_polling_interval_s(2), Ok(()));
    assert_eq!(handle.polling_interval_s(), 2);
}

#[test]
fn sizes_convert_between_mib_and_pages() {
    assert_eq!(mib_to_pages(1), 256);
    assert_eq!(mib_to_pages(u32::MAX), u32::MAX);
    assert_eq!(pages_to_mib(511), 1);
    assert_eq!(pages_to_mib(mib_to_pages(1 << 20)), 1 << 20);
}
