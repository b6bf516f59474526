//! A block device in a snapshot: which image, how it is opened, its id
//! and limits, and the image's size. The bytes of the image are not in
//! the snapshot: the same file must be there, of the same size, when the
//! snapshot is restored (the guest's page cache and file systems describe
//! it). Queue positions are the transport's ([`super::super::mmio::persist`]).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{BlockBackend, BlockError, Disk, LimitedQueue};
use crate::config::devices::{CacheType, DriveConfig, IoEngine, RateLimiterConfig};
use crate::devices::virtio::interrupt::Interrupt;
use crate::rate_limiter::RateLimiter;
use crate::snapshot::limits::LimiterState;
use crate::snapshot::Persist;

/// A block device's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockState {
    /// `drive_id` (also the serial GET_ID answers).
    pub drive_id: String,
    /// The disk image.
    pub path: PathBuf,
    /// Writes refused.
    pub read_only: bool,
    /// Flush offered (cache type `Writeback`).
    pub flush: bool,
    /// The image's size in bytes at the snapshot.
    pub size: u64,
    /// The rate limiter's buckets.
    pub rate_limiter: Option<LimiterState>,
}

impl BlockState {
    /// The drive this state describes, for [`Disk::open`].
    fn drive(&self) -> DriveConfig {
        DriveConfig {
            drive_id: self.drive_id.clone(),
            path_on_host: Some(self.path.clone()),
            is_root_device: false,
            partuuid: None,
            is_read_only: self.read_only,
            cache_type: if self.flush {
                CacheType::Writeback
            } else {
                CacheType::Unsafe
            },
            io_engine: IoEngine::Sync,
            rate_limiter: self.rate_limiter.as_ref().map(RateLimiterConfig::from),
            socket: None,
        }
    }
}

/// A block state refused.
#[derive(Debug, thiserror::Error)]
pub enum BlockStateError {
    /// The image cannot be opened (missing, unreadable…).
    #[error("Cannot restore drive {0:?}")]
    Open(String, #[source] BlockError),
    /// The image changed size since the snapshot.
    #[error("The disk image {} of drive {id:?} is {found} bytes; the snapshot was taken with {saved} bytes (the guest's file systems describe the image it had)", path.display())]
    Size {
        /// Drive id.
        id: String,
        /// Image path.
        path: PathBuf,
        /// Its size now.
        found: u64,
        /// Its size in the snapshot.
        saved: u64,
    },
    /// A field that cannot be right.
    #[error("Invalid block device state: `{0}` {1}")]
    Field(&'static str, String),
}

impl BlockState {
    /// Checks what does not need the file: a drive id and a path.
    pub fn validate(&self) -> Result<(), BlockStateError> {
        if self.drive_id.is_empty() {
            return Err(BlockStateError::Field("drive_id", "is empty".into()));
        }
        if self.path.as_os_str().is_empty() {
            return Err(BlockStateError::Field("path", "is empty".into()));
        }
        Ok(())
    }
}

impl Persist for BlockBackend {
    type State = BlockState;
    type ConstructorArgs = Arc<Interrupt>;
    type Error = BlockStateError;

    /// A block device's state never changes once it is built, so it is
    /// saved when the device is built, before the backend moves to its
    /// thread (see `attach`).
    fn save(&self) -> BlockState {
        BlockState {
            drive_id: self.drive_id.clone(),
            path: self.disk.path.clone(),
            read_only: self.disk.read_only,
            flush: self.disk.flush,
            size: self.disk.size,
            rate_limiter: self.limits.as_ref().map(LimiterState::from),
        }
    }

    /// Opens the image again, as it was opened, and refuses one whose size
    /// changed.
    fn restore(interrupt: Arc<Interrupt>, state: &BlockState) -> Result<Self, BlockStateError> {
        state.validate()?;
        let drive = state.drive();
        let open = |e| BlockStateError::Open(state.drive_id.clone(), e);
        let disk = Disk::open(&drive).map_err(open)?;
        if disk.size != state.size {
            return Err(BlockStateError::Size {
                id: state.drive_id.clone(),
                path: state.path.clone(),
                found: disk.size,
                saved: state.size,
            });
        }
        let limiter = RateLimiter::new(drive.rate_limiter.as_ref())
            .map_err(|e| open(BlockError::RateLimiter(state.drive_id.clone(), e)))?;
        Ok(BlockBackend {
            disk,
            queue: LimitedQueue::new(interrupt, limiter),
            drive_id: drive.drive_id,
            limits: drive.rate_limiter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::interrupt::IrqLine;
    use crate::devices::virtio::mmio::DeviceInfo;

    fn irq() -> Arc<Interrupt> {
        Arc::new(Interrupt::new(IrqLine::None))
    }

    fn image(dir: &std::path::Path, len: usize) -> PathBuf {
        let path = dir.join("disk.img");
        std::fs::write(&path, vec![0u8; len]).expect("image");
        path
    }

    fn info_bytes(i: &DeviceInfo) -> (u64, Vec<u8>) {
        (i.features, i.config.bytes())
    }

    #[test]
    fn a_saved_drive_comes_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = image(dir.path(), 64 << 10);
        let mut drive = BlockState {
            drive_id: "data".into(),
            path: path.clone(),
            read_only: true,
            flush: true,
            size: 64 << 10,
            rate_limiter: None,
        }
        .drive();
        drive.rate_limiter = Some(RateLimiterConfig {
            bandwidth: Some(crate::config::devices::TokenBucketConfig {
                size: 4096,
                one_time_burst: Some(1),
                refill_time: 100,
            }),
            ops: None,
        });
        let (info, backend) = super::super::create(&drive, irq()).expect("create");
        let state = backend.save();
        assert_eq!(state.path, path);
        assert!(state.read_only && state.flush);
        assert_eq!(
            state.rate_limiter.and_then(|l| l.bandwidth).map(|b| b.size),
            Some(4096)
        );
        let bytes = postcard::to_stdvec(&state).expect("encode");
        let back: BlockState = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, state);
        let restored = BlockBackend::restore(irq(), &back).expect("restore");
        assert_eq!(info_bytes(&restored.info()), info_bytes(&info));
        assert_eq!(restored.save(), state);
    }

    #[test]
    fn a_missing_or_resized_image_or_empty_fields_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = image(dir.path(), 8192);
        let state = BlockState {
            drive_id: "root".into(),
            path: path.clone(),
            read_only: false,
            flush: false,
            size: 8192,
            rate_limiter: None,
        };
        assert!(BlockBackend::restore(irq(), &state).is_ok());

        std::fs::write(&path, vec![0u8; 8704]).expect("grow");
        let err = BlockBackend::restore(irq(), &state).expect_err("grown image");
        let msg = err.to_string();
        assert!(
            msg.contains("8704 bytes") && msg.contains("8192 bytes"),
            "{msg}"
        );
        assert!(
            msg.contains("disk.img") && msg.contains("\"root\""),
            "{msg}"
        );

        std::fs::remove_file(&path).expect("remove");
        let err = BlockBackend::restore(irq(), &state).expect_err("missing image");
        assert!(matches!(err, BlockStateError::Open(ref id, _) if id == "root"));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("disk.img")), "{err}");

        for (field, bad) in [
            (
                "drive_id",
                BlockState {
                    drive_id: String::new(),
                    ..state.clone()
                },
            ),
            (
                "path",
                BlockState {
                    path: PathBuf::new(),
                    ..state.clone()
                },
            ),
        ] {
            let err = BlockBackend::restore(irq(), &bad).expect_err(field);
            assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        }
    }
}
