//! A hostile virtio-balloon driver: the fuzz input is the guest's memory
//! and one queue (layout: `common/mod.rs`), which the selector makes the
//! inflate (0), deflate (1) or stats (2) queue of a balloon with
//! statistics. The device serves it as its thread would: PFN lists checked
//! and inflated pages discarded (`madvise` on this guest memory only),
//! deflate lists checked, stats buffers parsed and held, then given back by
//! a poll. Must never panic nor touch memory outside the guest's.
#![no_main]

use std::sync::Arc;

use vessel_vmm::config::devices::BalloonConfig;
use vessel_vmm::devices::virtio::balloon::{self, VIRTIO_BALLOON_F_STATS_VQ};
use vessel_vmm::devices::virtio::interrupt::{Interrupt, IrqLine};
use vessel_vmm::devices::virtio::worker::Activation;

mod common;
use common::{hostile_queue, unready};

const VIRTIO_F_VERSION_1: u64 = 1 << 32;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(h) = hostile_queue(data) else { return };
    let (mem, queue, selector) = (h.mem, h.queue, h.selector);
    let config = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: false,
        stats_polling_interval_s: 1,
    };
    let irq = Arc::new(Interrupt::new(IrqLine::None));
    let Ok((_, mut backend, handle)) = balloon::create(&config, irq) else {
        return;
    };
    let mut queues = vec![unready(), unready(), unready()];
    queues[usize::from(selector % 3)] = queue;
    backend.fuzz_serve(Activation {
        mem,
        queues,
        features: VIRTIO_F_VERSION_1 | VIRTIO_BALLOON_F_STATS_VQ,
    });
    // Whatever the driver sent, the statistics stay readable.
    assert!(handle.statistics().is_ok());
});
