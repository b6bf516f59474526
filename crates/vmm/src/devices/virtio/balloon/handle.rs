//! What the balloon's two halves share, and the VMM thread's handle on
//! it: the target size (`PATCH /balloon` writes `num_pages` and raises a
//! configuration-change interrupt), the size the guest reports
//! (`actual`), the latest statistics and their polling interval
//! (`GET|PATCH /balloon/statistics`).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use vmm_sys_util::eventfd::EventFd;

use super::stats::GuestStats;
use super::{mib_to_pages, pages_to_mib, ACTUAL_OFFSET, NUM_PAGES_OFFSET};
use crate::config::devices::BalloonConfig;
use crate::devices::bus::lock;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::ConfigSpace;

/// Warnings printed before the rest are only counted (a hostile driver
/// must not fill the host's logs).
const MAX_PRINTED_WARNINGS: u64 = 32;

/// Refused changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalloonUpdateError {
    /// Statistics are on or off for the life of the device.
    #[error("Balloon statistics were {} when the device was configured and cannot be turned {} after boot.", if *enabled { "enabled" } else { "not enabled" }, if *enabled { "off" } else { "on" })]
    StatsToggle {
        /// Whether they are on.
        enabled: bool,
    },
    /// `GET /balloon/statistics` with statistics off.
    #[error("The balloon device statistics were not enabled when the device was configured.")]
    StatsDisabled,
}

/// Shared by the device thread and the handle.
#[derive(Debug)]
pub(super) struct Shared {
    pub config: Arc<ConfigSpace>,
    pub interrupt: Arc<Interrupt>,
    pub stats: Mutex<GuestStats>,
    /// Whether the device offers the stats queue (fixed at build).
    pub stats_enabled: bool,
    /// Whether it offers `VIRTIO_BALLOON_F_DEFLATE_ON_OOM` (fixed at build).
    pub deflate_on_oom: bool,
    pub polling_interval_s: AtomicU16,
    /// Tells the device thread to re-arm its polling timer.
    pub interval_changed: EventFd,
    /// The driver set `DRIVER_OK` (and has not reset the device since).
    pub active: AtomicBool,
    warnings: AtomicU64,
}

impl Shared {
    pub fn new(
        config: Arc<ConfigSpace>,
        interrupt: Arc<Interrupt>,
        balloon: &BalloonConfig,
    ) -> std::io::Result<Self> {
        let seconds = balloon.stats_polling_interval_s;
        Ok(Shared {
            config,
            interrupt,
            stats: Mutex::new(GuestStats::default()),
            stats_enabled: seconds != 0,
            deflate_on_oom: balloon.deflate_on_oom,
            polling_interval_s: AtomicU16::new(seconds),
            interval_changed: EventFd::new(libc::EFD_NONBLOCK)?,
            active: AtomicBool::new(false),
            warnings: AtomicU64::new(0),
        })
    }

    pub fn config_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.config.read(offset as u64, &mut b);
        u32::from_le_bytes(b)
    }

    /// Logs what a driver did wrong (on stderr, the VMM's log of last
    /// resort for device threads): the first few lines, then only a count.
    pub fn warn(&self, msg: impl FnOnce() -> String) {
        let n = self.warnings.fetch_add(1, Ordering::Relaxed);
        if n < MAX_PRINTED_WARNINGS {
            eprintln!("vessel: balloon: {}", msg());
        } else if n == MAX_PRINTED_WARNINGS {
            eprintln!("vessel: balloon: further warnings are counted, not printed");
        }
    }
}

/// `GET /balloon/statistics`, with Firecracker's field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BalloonStatistics {
    /// Pages the device asks the guest to hold.
    pub target_pages: u32,
    /// Pages the guest says it holds.
    pub actual_pages: u32,
    /// `target_pages` in MiB.
    pub target_mib: u32,
    /// `actual_pages` in MiB.
    pub actual_mib: u32,
    /// What the guest reported last.
    #[serde(flatten)]
    pub guest: GuestStats,
}

/// The VMM thread's handle on a running balloon.
#[derive(Debug, Clone)]
pub struct BalloonHandle {
    shared: Arc<Shared>,
}

impl BalloonHandle {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        BalloonHandle { shared }
    }

    /// `num_pages`: the target.
    pub fn target_pages(&self) -> u32 {
        self.shared.config_u32(NUM_PAGES_OFFSET)
    }

    /// `actual`: what the driver last wrote.
    pub fn actual_pages(&self) -> u32 {
        self.shared.config_u32(ACTUAL_OFFSET)
    }

    /// Sets the target to `mib` (the caller checked it against guest
    /// memory) and tells a running driver with a configuration-change
    /// interrupt.
    pub fn set_target_mib(&self, mib: u32) {
        let pages = mib_to_pages(mib).to_le_bytes();
        self.shared.config.update(|b| {
            b[NUM_PAGES_OFFSET..NUM_PAGES_OFFSET + 4].copy_from_slice(&pages);
        });
        if self.shared.active.load(Ordering::SeqCst) {
            self.shared.interrupt.signal_config_change();
        }
    }

    /// The statistics polling interval in seconds (0: none).
    pub fn polling_interval_s(&self) -> u16 {
        self.shared.polling_interval_s.load(Ordering::SeqCst)
    }

    /// Changes the polling interval; the next request goes out at once.
    /// Statistics cannot be turned on or off (as in Firecracker).
    pub fn set_polling_interval_s(&self, seconds: u16) -> Result<(), BalloonUpdateError> {
        let enabled = self.shared.stats_enabled;
        if enabled != (seconds != 0) {
            return Err(BalloonUpdateError::StatsToggle { enabled });
        }
        self.shared
            .polling_interval_s
            .store(seconds, Ordering::SeqCst);
        // A device thread that missed this re-arms when it next activates.
        let _ = self.shared.interval_changed.write(1);
        Ok(())
    }

    /// The sizes and the guest's latest statistics.
    pub fn statistics(&self) -> Result<BalloonStatistics, BalloonUpdateError> {
        if !self.shared.stats_enabled {
            return Err(BalloonUpdateError::StatsDisabled);
        }
        let (target_pages, actual_pages) = (self.target_pages(), self.actual_pages());
        Ok(BalloonStatistics {
            target_pages,
            actual_pages,
            target_mib: pages_to_mib(target_pages),
            actual_mib: pages_to_mib(actual_pages),
            guest: *lock(&self.shared.stats),
        })
    }

    /// The device as `GET /balloon` shows it: the current target (in
    /// whole MiB), the features and polling interval it runs with. After a
    /// restore this is where the controller learns the balloon's
    /// configuration (the snapshot has no configuration file).
    pub fn config(&self) -> BalloonConfig {
        BalloonConfig {
            amount_mib: pages_to_mib(self.target_pages()),
            deflate_on_oom: self.shared.deflate_on_oom,
            stats_polling_interval_s: self.polling_interval_s(),
        }
    }

    /// How many times the driver sent something vessel had to ignore.
    pub fn warnings(&self) -> u64 {
        self.shared.warnings.load(Ordering::Relaxed)
    }
}
