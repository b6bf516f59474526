//! A hostile virtio driver: the fuzz input is the guest's memory (rings,
//! descriptors, request headers, data) and the queue's size and next index;
//! every chain on the queue is validated and served by the block request
//! handler (on a small scratch image) and by the entropy handler. Must
//! never panic nor touch memory outside the guest's. The input's layout:
//! `common/mod.rs`. virtio-net, vsock and the balloon have their own
//! targets (`virtio_net`, `virtio_vsock`, `virtio_balloon`).
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use vessel_vmm::config::devices::{CacheType, DriveConfig, IoEngine};
use vessel_vmm::devices::virtio::block::{request, Disk};
use vessel_vmm::devices::virtio::interrupt::{Interrupt, IrqLine};
use vessel_vmm::devices::virtio::queue::{serve, Served};
use vessel_vmm::devices::virtio::rng;

mod common;
use common::hostile_queue;

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
    let Some(h) = hostile_queue(data) else { return };
    let (mem, mut queue, selector) = (h.mem, h.queue, h.selector);
    let irq = Interrupt::new(IrqLine::None);
    let rng_turn = selector & 1 == 1;
    serve(&mut queue, &mem, &irq, |chain| {
        if rng_turn {
            Served::Done(rng::handle(chain, &mem))
        } else {
            Served::Done(request::handle(chain, &mem, disk()))
        }
    });
});
