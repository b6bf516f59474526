//! A hostile virtio driver: the fuzz input is the guest's memory (rings,
//! descriptors, request headers, data) and the queue's size and next index;
//! every chain on the queue is validated and served by the block request
//! handler (on a small scratch image) and by the entropy handler. Must
//! never panic nor touch memory outside the guest's.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use vessel_vmm::config::devices::{CacheType, DriveConfig, IoEngine};
use vessel_vmm::devices::virtio::block::{request, Disk};
use vessel_vmm::devices::virtio::interrupt::{Interrupt, IrqLine};
use vessel_vmm::devices::virtio::queue::{serve, Served};
use vessel_vmm::devices::virtio::rng;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 64 << 10;

fn disk() -> &'static Disk {
    static DISK: OnceLock<(tempfile::NamedTempFile, Disk)> = OnceLock::new();
    &DISK
        .get_or_init(|| {
            let mut f = tempfile::NamedTempFile::new().expect("image");
            f.write_all(&[0u8; 16 * 512]).expect("write");
            let drive = DriveConfig {
                drive_id: "fuzz".into(),
                path_on_host: Some(f.path().to_owned()),
                is_root_device: false,
                partuuid: None,
                is_read_only: false,
                cache_type: CacheType::Writeback,
                io_engine: IoEngine::Sync,
                rate_limiter: None,
                socket: None,
            };
            let d = Disk::open(&drive).expect("disk");
            (f, d)
        })
        .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, body) = data.split_at(4);
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM)]).expect("memory");
    let n = body.len().min(MEM);
    mem.write_slice(&body[..n], GuestAddress(0)).expect("fits");
    let size = 1u16 << (head[0] % 9); // 1..=256
    let Ok(mut queue) = Queue::new(256) else { return };
    queue.set_size(size);
    queue.set_desc_table_address(Some(0), Some(0));
    queue.set_avail_ring_address(Some(0x4000), Some(0));
    queue.set_used_ring_address(Some(0x8000), Some(0));
    queue.set_next_avail(u16::from_le_bytes([head[1], head[2]]));
    queue.set_ready(true);
    if !queue.is_valid(&mem) {
        return;
    }
    let irq = Interrupt::new(IrqLine::None);
    let rng_turn = head[3] & 1 == 1;
    serve(&mut queue, &mem, &irq, |chain| {
        if rng_turn {
            Served::Done(rng::handle(chain, &mem))
        } else {
            Served::Done(request::handle(chain, &mem, disk()))
        }
    });
});
