//! virtio-blk and virtio-rng end to end: the C guest `virtio_blk.c` finds
//! the devices on its command line, drives them through their queues and
//! prints what it saw; the test checks those lines and the disk image.

mod common;

use std::path::Path;

use common::{build_c_guest, captured, require_kvm, text};
use vessel_vmm::config::devices::{CacheType, DriveConfig, EntropyConfig, IoEngine};
use vessel_vmm::{run_vm, VmExitReason};

const SECTOR: usize = 512;

/// A 64 KiB image: sector 1 is (i*7+1)&0xff, sector 3 is "old data".
fn make_image(path: &Path) {
    let mut img = vec![0u8; 128 * SECTOR];
    for (i, b) in img[SECTOR..2 * SECTOR].iter_mut().enumerate() {
        *b = (i * 7 + 1) as u8;
    }
    img[3 * SECTOR..4 * SECTOR].fill(b'o');
    std::fs::write(path, img).expect("image");
}

fn drive(id: &str, path: &Path, read_only: bool) -> DriveConfig {
    DriveConfig {
        drive_id: id.into(),
        path_on_host: Some(path.to_owned()),
        is_root_device: false,
        partuuid: None,
        is_read_only: read_only,
        cache_type: CacheType::Writeback,
        io_engine: IoEngine::Sync,
        rate_limiter: None,
        socket: None,
    }
}

fn expected_sector_2() -> Vec<u8> {
    let mut s: Vec<u8> = (0..SECTOR).map(|i| (i * 13 + 5) as u8).collect();
    s[..16].copy_from_slice(b"guest wrote this");
    s
}

fn run_rw_guest(kvm_eventfds: bool) {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_blk", dir.path());
    let image = dir.path().join("disk.img");
    make_image(&image);
    let (mut config, console) = captured(&kernel);
    config
        .devices
        .drives
        .push(drive("vessel_disk_1", &image, false));
    config.devices.entropy = Some(EntropyConfig::default());
    config.devices.kvm_eventfds = kvm_eventfds;
    let reason = run_vm(config).expect("the guest runs");
    let out = text(&console);
    eprintln!("{out}");
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    for line in [
        "virtio devices: 2\n",
        "blk: capacity 128 read-write flush\n",
        "blk: id vessel_disk_1 status 0\n",
        "blk: interrupt ok\n",
        "blk: sector 1 matches\n",
        "blk: write status 0\n",
        "blk: flush status 0\n",
        "blk: discard status 0\n",
        "blk: read past end status 1\n",
        "blk: loop chain used len 0\n",
        "blk: outside chain used len 0\n",
        "blk: still answers\n",
        "rng: got 32 and 32 bytes, different\n",
        "done\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let img = std::fs::read(&image).expect("image");
    assert_eq!(img.len(), 128 * SECTOR, "the image keeps its size");
    assert_eq!(&img[2 * SECTOR..3 * SECTOR], &expected_sector_2()[..]);
    assert!(
        img[3 * SECTOR..4 * SECTOR].iter().all(|&b| b == 0),
        "the discarded sector reads as zeroes"
    );
    assert_eq!(img[SECTOR + 1], 8, "sector 1 untouched");
    assert!(img[4 * SECTOR..].iter().all(|&b| b == 0));
}

#[test]
fn guest_reads_writes_flushes_discards_and_gets_entropy() {
    run_rw_guest(true);
}

#[test]
fn fallback_without_ioeventfd_and_irqfd_works_the_same() {
    // Notifications arrive as MMIO exits on the vCPU thread and the
    // interrupt is raised with KVM_IRQ_LINE.
    run_rw_guest(false);
}

#[test]
fn read_only_disk_refuses_writes() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_blk", dir.path());
    let image = dir.path().join("ro.img");
    make_image(&image);
    let before = std::fs::read(&image).expect("image");
    let (mut config, console) = captured(&kernel);
    config.devices.drives.push(drive("ro", &image, true));
    assert_eq!(run_vm(config).expect("runs"), VmExitReason::Reset);
    let out = text(&console);
    assert!(out.contains("blk: capacity 128 read-only flush\n"), "{out}");
    assert!(out.contains("blk: sector 1 matches\n"), "{out}");
    assert!(out.contains("blk: write status 1\n"), "{out}");
    assert!(!out.contains("discard"), "{out}");
    assert_eq!(std::fs::read(&image).expect("image"), before);
}

#[test]
fn missing_or_tiny_images_are_clear_errors() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_blk", dir.path());
    let (mut config, console) = captured(&kernel);
    let missing = dir.path().join("nope.img");
    config.devices.drives.push(drive("data", &missing, false));
    let err = error_chain(&run_vm(config).expect_err("missing image"));
    assert!(
        err.contains("nope.img") && err.contains("\"data\""),
        "{err}"
    );
    assert!(text(&console).is_empty(), "the guest never ran");

    let tiny = dir.path().join("tiny.img");
    std::fs::write(&tiny, [0u8; 100]).expect("tiny");
    let (mut config, _) = captured(&kernel);
    config.devices.drives.push(drive("data", &tiny, false));
    let err = error_chain(&run_vm(config).expect_err("tiny image"));
    assert!(err.contains("100 bytes"), "{err}");
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
