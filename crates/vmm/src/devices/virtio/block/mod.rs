//! virtio-blk on a raw disk image: read, write, flush (when the cache type
//! is `Writeback`), discard and write-zeroes (punched holes), GET_ID (the
//! drive id as serial), a read-only mode, and a rate limiter. All file I/O
//! happens on the device's own thread.

pub mod persist;
pub mod request;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_manager::{EventOps, EventSet};
use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_queue::QueueState;

use super::interrupt::Interrupt;
use super::limited::LimitedQueue;
use super::mmio::DeviceInfo;
use super::worker::{Activation, Backend};
use super::{ConfigSpace, QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::config::devices::{CacheType, DriveConfig, RateLimiterConfig};
use crate::rate_limiter::RateLimiter;
use request::{MAX_DISCARD_SEGMENTS, SECTOR_SIZE};

/// Errors opening a disk image.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The image cannot be opened.
    #[error("Cannot open the disk image {} of drive {id:?}", path.display())]
    Open {
        /// Drive id.
        id: String,
        /// Image path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The image is smaller than a sector.
    #[error("The disk image {} of drive {id:?} is {size} bytes, less than one 512-byte sector", path.display())]
    TooSmall {
        /// Drive id.
        id: String,
        /// Image path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The rate limiter's timer.
    #[error("Cannot create the rate limiter of drive {0:?}")]
    RateLimiter(String, #[source] std::io::Error),
}

/// An open disk image.
#[derive(Debug)]
pub struct Disk {
    /// The image.
    pub file: File,
    /// Where it is (kept for snapshots).
    pub path: PathBuf,
    /// Its size in bytes when opened.
    pub size: u64,
    /// Whole sectors in it (a partial last sector is not visible).
    pub sectors: u64,
    /// Writes refused.
    pub read_only: bool,
    /// Flush requests offered (and synced).
    pub flush: bool,
    /// GET_ID answer: the id, zero-padded to 20 bytes.
    pub id: [u8; VIRTIO_BLK_ID_BYTES as usize],
}

impl Disk {
    /// Opens the image of `drive`.
    pub fn open(drive: &DriveConfig) -> Result<Self, BlockError> {
        let path = drive.path_on_host.as_deref().unwrap_or(Path::new(""));
        let open_err = |source| BlockError::Open {
            id: drive.drive_id.clone(),
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(!drive.is_read_only)
            .open(path)
            .map_err(open_err)?;
        let size = file.metadata().map_err(open_err)?.len();
        if size < SECTOR_SIZE {
            return Err(BlockError::TooSmall {
                id: drive.drive_id.clone(),
                path: path.to_owned(),
                size,
            });
        }
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let bytes = drive.drive_id.as_bytes();
        let n = bytes.len().min(id.len());
        id[..n].copy_from_slice(&bytes[..n]);
        Ok(Disk {
            file,
            path: path.to_owned(),
            size,
            sectors: size / SECTOR_SIZE,
            read_only: drive.is_read_only,
            flush: drive.cache_type == CacheType::Writeback,
            id,
        })
    }

    /// Feature bits for this disk.
    pub fn features(&self) -> u64 {
        let bit = |b: u32| 1u64 << b;
        let mut f = VIRTIO_F_VERSION_1 | bit(VIRTIO_BLK_F_SEG_MAX);
        if self.read_only {
            f |= bit(VIRTIO_BLK_F_RO);
        } else {
            f |= bit(VIRTIO_BLK_F_DISCARD) | bit(VIRTIO_BLK_F_WRITE_ZEROES);
        }
        if self.flush {
            f |= bit(VIRTIO_BLK_F_FLUSH);
        }
        f
    }

    /// `struct virtio_blk_config` (the fields up to write_zeroes_may_unmap).
    pub fn config_space(&self) -> Vec<u8> {
        let mut c = vec![0u8; 60];
        c[0..8].copy_from_slice(&self.sectors.to_le_bytes());
        // seg_max: a request fits in the queue with its header and status.
        c[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes());
        let max_sectors = u32::MAX / SECTOR_SIZE as u32;
        c[36..40].copy_from_slice(&max_sectors.to_le_bytes()); // max_discard_sectors
        c[40..44].copy_from_slice(&MAX_DISCARD_SEGMENTS.to_le_bytes());
        c[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        c[48..52].copy_from_slice(&max_sectors.to_le_bytes()); // max_write_zeroes_sectors
        c[52..56].copy_from_slice(&MAX_DISCARD_SEGMENTS.to_le_bytes());
        c[56] = 1; // write_zeroes_may_unmap
        c
    }
}

/// The device thread's half.
#[derive(Debug)]
pub struct BlockBackend {
    disk: Disk,
    queue: LimitedQueue,
    /// The drive id (names the device in errors and snapshots).
    drive_id: String,
    /// The limiter's configuration (for snapshots).
    limits: Option<RateLimiterConfig>,
}

impl BlockBackend {
    fn process(&mut self) {
        let disk = &self.disk;
        self.queue.serve(
            |chain, mem| request::parse(chain, mem).map_or(0, |r| request::cost(chain, r.kind)),
            |chain, mem| request::handle(chain, mem, disk),
        );
    }
}

impl Backend for BlockBackend {
    fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        self.queue.activate(a, ops);
        // Requests made before the driver said DRIVER_OK are served now.
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

impl BlockBackend {
    /// The transport's description of this disk.
    pub fn info(&self) -> DeviceInfo {
        DeviceInfo {
            device_type: VIRTIO_ID_BLOCK,
            queue_sizes: vec![QUEUE_SIZE],
            features: self.disk.features(),
            config: Arc::new(ConfigSpace::new(self.disk.config_space(), 0..0)),
        }
    }
}

/// The transport's description and the backend of `drive`.
pub fn create(
    drive: &DriveConfig,
    interrupt: Arc<Interrupt>,
) -> Result<(DeviceInfo, BlockBackend), BlockError> {
    let disk = Disk::open(drive)?;
    let limiter = RateLimiter::new(drive.rate_limiter.as_ref())
        .map_err(|e| BlockError::RateLimiter(drive.drive_id.clone(), e))?;
    let backend = BlockBackend {
        disk,
        queue: LimitedQueue::new(interrupt, limiter),
        drive_id: drive.drive_id.clone(),
        limits: drive.rate_limiter,
    };
    Ok((backend.info(), backend))
}

#[cfg(test)]
mod tests;
