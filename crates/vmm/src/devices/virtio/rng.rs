//! virtio-rng (Firecracker's "entropy" device): each request's writable
//! buffers are filled from the host's `getrandom`, up to
//! [`MAX_REQUEST_BYTES`] per request, under an optional rate limiter.

pub mod persist;

use std::sync::Arc;

use event_manager::{EventOps, EventSet};
use virtio_bindings::virtio_ids::VIRTIO_ID_RNG;
use virtio_queue::QueueState;
use vm_memory::GuestMemoryMmap;

use super::interrupt::Interrupt;
use super::limited::LimitedQueue;
use super::mmio::DeviceInfo;
use super::queue::Chain;
use super::worker::{Activation, Backend};
use super::{ConfigSpace, QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::config::devices::{EntropyConfig, RateLimiterConfig};
use crate::metrics::METRICS;
use crate::rate_limiter::RateLimiter;

/// Most bytes handed out per request (Linux asks for 64 at a time).
pub const MAX_REQUEST_BYTES: usize = 64 << 10;

/// Fills `buf` from the kernel's CSPRNG.
pub fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: getrandom(2) writes at most `rest.len()` bytes into the
        // valid, exclusively borrowed `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        done += usize::try_from(n).unwrap_or(0);
    }
    Ok(())
}

/// Serves one entropy request: the number of bytes written.
pub fn handle(chain: &Chain, mem: &GuestMemoryMmap) -> u32 {
    let len = usize::try_from(chain.writable_len())
        .unwrap_or(MAX_REQUEST_BYTES)
        .min(MAX_REQUEST_BYTES);
    let mut buf = vec![0u8; len];
    METRICS.entropy.entropy_event_count.inc();
    if getrandom(&mut buf).is_err() {
        METRICS.entropy.host_rng_fails.inc();
        return 0;
    }
    let written = chain.write_at(mem, 0, &buf);
    METRICS.entropy.entropy_bytes.add(written as u64);
    u32::try_from(written).unwrap_or(0)
}

/// The device thread's half.
#[derive(Debug)]
pub struct RngBackend {
    queue: LimitedQueue,
    /// The limiter's configuration (for snapshots).
    limits: Option<RateLimiterConfig>,
}

impl RngBackend {
    fn process(&mut self) {
        self.queue.serve(
            |chain, _| chain.writable_len().min(MAX_REQUEST_BYTES as u64),
            handle,
        );
    }
}

impl Backend for RngBackend {
    fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        self.queue.activate(a, ops);
        self.process();
    }

    fn queue_event(&mut self, _index: usize, _ops: &mut EventOps) {
        self.process();
    }

    fn device_event(&mut self, tag: u32, _events: EventSet, _ops: &mut EventOps) {
        if self.queue.timer_event(tag) {
            self.process();
        }
    }

    fn reset(&mut self, ops: &mut EventOps) {
        self.queue.reset(ops);
    }

    fn queue_states(&self) -> Option<Vec<QueueState>> {
        self.queue.queue_states()
    }
}

/// The transport's description of the entropy device.
pub fn info() -> DeviceInfo {
    DeviceInfo {
        device_type: VIRTIO_ID_RNG,
        queue_sizes: vec![QUEUE_SIZE],
        features: VIRTIO_F_VERSION_1,
        config: Arc::new(ConfigSpace::new(Vec::new(), 0..0)),
    }
}

/// The transport's description and the backend of the entropy device.
pub fn create(
    config: &EntropyConfig,
    interrupt: Arc<Interrupt>,
) -> std::io::Result<(DeviceInfo, RngBackend)> {
    let limiter = RateLimiter::new(config.rate_limiter.as_ref())?;
    let backend = RngBackend {
        queue: LimitedQueue::new(interrupt, limiter),
        limits: config.rate_limiter,
    };
    Ok((info(), backend))
}
