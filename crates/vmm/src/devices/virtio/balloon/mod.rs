//! virtio-balloon (device id 5), as Firecracker offers it: the host sets a
//! target size (`amount_mib`: `PUT /balloon` before boot, `PATCH /balloon`
//! after), the guest driver gives that many pages back through the
//! inflate queue and reports how many it holds in `actual`; vessel
//! discards each inflated page (`madvise(MADV_DONTNEED)`, [`pfn`]) after
//! checking it lies inside guest memory. The deflate queue returns pages
//! to the guest. With `stats_polling_interval_s` the stats queue
//! (`VIRTIO_BALLOON_F_STATS_VQ`) brings the guest's memory statistics
//! ([`stats`]); `deflate_on_oom` offers `VIRTIO_BALLOON_F_DEFLATE_ON_OOM`.
//!
//! Configuration space: `le32 num_pages` (the target, written by the
//! device), `le32 actual` (written by the driver). A new target raises a
//! configuration-change interrupt.

pub mod device;
pub mod handle;
pub mod persist;
pub mod pfn;
pub mod stats;

use std::sync::Arc;

use virtio_bindings::virtio_ids::VIRTIO_ID_BALLOON;

pub use device::BalloonBackend;
pub use handle::{BalloonHandle, BalloonStatistics, BalloonUpdateError};

use super::interrupt::Interrupt;
use super::mmio::DeviceInfo;
use super::{ConfigSpace, QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::config::devices::BalloonConfig;

// virtio-bindings has no virtio_balloon.h; these are the virtio 1.x
// spec's values (5.5.3).
/// The driver reports statistics on a third queue.
pub const VIRTIO_BALLOON_F_STATS_VQ: u64 = 1 << 1;
/// The driver takes pages back from the balloon when the guest is out of
/// memory.
pub const VIRTIO_BALLOON_F_DEFLATE_ON_OOM: u64 = 1 << 2;

/// The inflate queue.
pub const INFLATE_QUEUE: usize = 0;
/// The deflate queue.
pub const DEFLATE_QUEUE: usize = 1;
/// The stats queue (only with statistics on).
pub const STATS_QUEUE: usize = 2;

/// `num_pages` in the configuration space.
pub const NUM_PAGES_OFFSET: usize = 0;
/// `actual` in the configuration space (the driver writes it).
pub const ACTUAL_OFFSET: usize = 4;
/// Configuration space length (the fields vessel implements).
pub const CONFIG_LEN: usize = 8;

const PAGES_PER_MIB_SHIFT: u32 = 20 - pfn::PFN_SHIFT;

/// Errors building the balloon.
#[derive(Debug, thiserror::Error)]
pub enum BalloonError {
    /// Its eventfd or timer.
    #[error("Cannot set up the balloon device's {0}")]
    Host(&'static str, #[source] std::io::Error),
}

/// MiB to 4 KiB pages (saturating; the configuration caps the size far
/// below).
pub fn mib_to_pages(mib: u32) -> u32 {
    mib.checked_shl(PAGES_PER_MIB_SHIFT)
        .filter(|p| p >> PAGES_PER_MIB_SHIFT == mib)
        .unwrap_or(u32::MAX)
}

/// 4 KiB pages to whole MiB.
pub fn pages_to_mib(pages: u32) -> u32 {
    pages >> PAGES_PER_MIB_SHIFT
}

/// The transport's description, the device thread's half and the VMM
/// thread's handle of the balloon `config` describes.
pub fn create(
    config: &BalloonConfig,
    interrupt: Arc<Interrupt>,
) -> Result<(DeviceInfo, BalloonBackend, BalloonHandle), BalloonError> {
    let mut bytes = vec![0u8; CONFIG_LEN];
    bytes[NUM_PAGES_OFFSET..NUM_PAGES_OFFSET + 4]
        .copy_from_slice(&mib_to_pages(config.amount_mib).to_le_bytes());
    let space = Arc::new(ConfigSpace::new(bytes, ACTUAL_OFFSET..ACTUAL_OFFSET + 4));
    let shared = Arc::new(
        handle::Shared::new(space, interrupt, config)
            .map_err(|e| BalloonError::Host("eventfd", e))?,
    );
    let backend = BalloonBackend::new(shared).map_err(|e| BalloonError::Host("timer", e))?;
    let (info, handle) = (backend.info(), backend.handle());
    Ok((info, backend, handle))
}

impl BalloonBackend {
    /// The transport's description of this balloon: its features and
    /// queues follow what it was built with.
    pub fn info(&self) -> DeviceInfo {
        let shared = &self.shared;
        let mut features = VIRTIO_F_VERSION_1;
        if shared.stats_enabled {
            features |= VIRTIO_BALLOON_F_STATS_VQ;
        }
        if shared.deflate_on_oom {
            features |= VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
        }
        DeviceInfo {
            device_type: VIRTIO_ID_BALLOON,
            queue_sizes: vec![QUEUE_SIZE; if shared.stats_enabled { 3 } else { 2 }],
            features,
            config: shared.config.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
