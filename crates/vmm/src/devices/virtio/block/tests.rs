//! Block requests a hostile driver can make.

use std::io::Write;
use std::os::unix::fs::FileExt;

use vm_memory::{Bytes, GuestAddress};

use super::request::handle;
use super::*;
use crate::devices::virtio::queue::tests::Driver;
use crate::devices::virtio::queue::Popped;

const HDR: u64 = 0x10000;
const DATA: u64 = 0x20000;
const STATUS: u64 = 0x30000;

fn disk(read_only: bool) -> (tempfile::NamedTempFile, Disk) {
    let mut f = tempfile::NamedTempFile::new().expect("image");
    let img: Vec<u8> = (0..8 * 512).map(|i| (i / 512) as u8).collect();
    f.write_all(&img).expect("write");
    let drive = DriveConfig {
        drive_id: "a_very_long_drive_id_of_more_than_20".into(),
        path_on_host: Some(f.path().to_owned()),
        is_root_device: false,
        partuuid: None,
        is_read_only: read_only,
        cache_type: CacheType::Writeback,
        io_engine: crate::config::devices::IoEngine::Sync,
        rate_limiter: None,
        socket: None,
    };
    let d = Disk::open(&drive).expect("disk");
    (f, d)
}

/// Runs one request chain; returns (used len, status byte).
fn run(
    d: &mut Driver,
    disk: &Disk,
    kind: u32,
    sector: u64,
    bufs: &[(u64, u32, bool)],
) -> (u32, u8) {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    d.mem.write_slice(&h, GuestAddress(HDR)).expect("header");
    d.mem
        .write_obj(0xeeu8, GuestAddress(STATUS))
        .expect("status");
    d.chain(0, bufs);
    d.publish(0);
    let Ok(Some(Popped::Chain(c))) = d.pop() else {
        panic!("not a valid chain");
    };
    let len = handle(&c, &d.mem, disk);
    (len, d.mem.read_obj(GuestAddress(STATUS)).expect("status"))
}

fn req(data_len: u32, write: bool) -> Vec<(u64, u32, bool)> {
    vec![(HDR, 16, false), (DATA, data_len, write), (STATUS, 1, true)]
}

#[test]
fn reads_writes_and_ids_within_the_disk() {
    let (_f, disk) = disk(false);
    let mut d = Driver::new();
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_IN, 5, &req(1024, true)),
        (1025, 0)
    );
    let mut got = [0u8; 1024];
    d.mem.read_slice(&mut got, GuestAddress(DATA)).expect("r");
    assert!(got[..512].iter().all(|&b| b == 5) && got[512..].iter().all(|&b| b == 6));
    d.mem
        .write_slice(&[9u8; 512], GuestAddress(DATA))
        .expect("w");
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_OUT, 7, &req(512, false)),
        (1, 0)
    );
    let mut back = [0u8; 512];
    disk.file.read_exact_at(&mut back, 7 * 512).expect("r");
    assert_eq!(back, [9u8; 512]);
    // GET_ID: the first 20 bytes of the id, cut to the buffer.
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_GET_ID, 0, &req(8, true)),
        (9, 0)
    );
    let mut id = [0u8; 8];
    d.mem.read_slice(&mut id, GuestAddress(DATA)).expect("r");
    assert_eq!(&id, b"a_very_l");
    assert_eq!(
        run(
            &mut d,
            &disk,
            VIRTIO_BLK_T_FLUSH,
            0,
            &[(HDR, 16, false), (STATUS, 1, true)]
        ),
        (1, 0)
    );
}

#[test]
fn out_of_range_partial_and_overflowing_requests_are_io_errors() {
    let (_f, disk) = disk(false);
    let mut d = Driver::new();
    let ioerr = (1, VIRTIO_BLK_S_IOERR as u8);
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_IN, 8, &req(512, true)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_IN, 7, &req(1024, true)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_IN, u64::MAX, &req(512, true)),
        ioerr
    );
    assert_eq!(
        run(
            &mut d,
            &disk,
            VIRTIO_BLK_T_IN,
            u64::MAX / 512 + 1,
            &req(512, true)
        ),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_IN, 0, &req(100, true)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_OUT, 0, &req(511, false)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_OUT, 8, &req(512, false)),
        ioerr
    );
    // A header cut short.
    assert_eq!(
        run(
            &mut d,
            &disk,
            VIRTIO_BLK_T_IN,
            0,
            &[(HDR, 8, false), (STATUS, 1, true)]
        ),
        ioerr
    );
    // Unknown type.
    assert_eq!(
        run(&mut d, &disk, 0x7777, 0, &req(512, true)),
        (1, VIRTIO_BLK_S_UNSUPP as u8)
    );
}

#[test]
fn a_chain_without_a_status_byte_gets_nothing_written() {
    let (_f, disk) = disk(false);
    let mut d = Driver::new();
    let (len, status) = run(
        &mut d,
        &disk,
        VIRTIO_BLK_T_IN,
        0,
        &[(HDR, 16, false), (DATA, 512, false)],
    );
    assert_eq!((len, status), (0, 0xee));
}

#[test]
fn discard_segments_are_checked() {
    let (_f, disk) = disk(false);
    let mut d = Driver::new();
    let seg = |sector: u64, count: u32, flags: u32| {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&sector.to_le_bytes());
        s[8..12].copy_from_slice(&count.to_le_bytes());
        s[12..].copy_from_slice(&flags.to_le_bytes());
        s
    };
    let ioerr = (1, VIRTIO_BLK_S_IOERR as u8);
    for (bytes, want) in [
        (seg(1, 2, 0).to_vec(), (1, 0)),
        (seg(7, 2, 0).to_vec(), ioerr),
        (seg(u64::MAX, 1, 0).to_vec(), ioerr),
        (seg(1, 1, 1).to_vec(), ioerr), // unmap flag on a discard
        (seg(1, 1, 0)[..10].to_vec(), ioerr),
        (seg(0, 1, 0).repeat(33), ioerr), // more than max_discard_seg
    ] {
        d.mem.write_slice(&bytes, GuestAddress(DATA)).expect("w");
        let r = run(
            &mut d,
            &disk,
            VIRTIO_BLK_T_DISCARD,
            0,
            &req(bytes.len() as u32, false),
        );
        assert_eq!(r, want, "{} bytes", bytes.len());
    }
    let mut back = [0xffu8; 1024];
    disk.file.read_exact_at(&mut back, 512).expect("r");
    assert!(back.iter().all(|&b| b == 0), "sectors 1 and 2 discarded");
    let mut kept = [0u8; 1];
    disk.file.read_exact_at(&mut kept, 3 * 512).expect("r");
    assert_eq!(kept, [3]);
}

#[test]
fn a_read_only_disk_refuses_every_write() {
    let (_f, disk) = disk(true);
    let mut d = Driver::new();
    let ioerr = (1, VIRTIO_BLK_S_IOERR as u8);
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_OUT, 0, &req(512, false)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_DISCARD, 0, &req(16, false)),
        ioerr
    );
    assert_eq!(
        run(&mut d, &disk, VIRTIO_BLK_T_WRITE_ZEROES, 0, &req(16, false)),
        ioerr
    );
    assert_ne!(disk.features() & (1 << VIRTIO_BLK_F_RO), 0);
    assert_eq!(disk.features() & (1 << VIRTIO_BLK_F_DISCARD), 0);
}
