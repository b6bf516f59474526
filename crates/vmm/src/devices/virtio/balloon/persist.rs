//! The balloon in a snapshot: the target and the `actual` the driver
//! reported, the features it was built with, the statistics polling
//! interval (`PATCH /balloon/statistics` may have changed it), the latest
//! statistics and the stats buffer the device holds between two polls.
//!
//! Unlike the other devices this state changes at run time, so it is
//! saved on the device thread while it is paused for the snapshot
//! ([`Backend::snapshot_state`](crate::devices::virtio::worker::Backend::snapshot_state)),
//! and the queues' positions come from the thread too
//! (`Backend::queue_states`): the held stats buffer is in flight, taken
//! from the available ring but not yet in the used ring. On restore the
//! rebuilt device holds that same buffer and gives it back at its next
//! poll.

use std::num::Wrapping;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::stats::VIRTIO_BALLOON_S_DIRECT_RECLAIM;
use super::{
    create, mib_to_pages, pages_to_mib, BalloonBackend, BalloonError, ACTUAL_OFFSET, CONFIG_LEN,
    NUM_PAGES_OFFSET, STATS_QUEUE, VIRTIO_BALLOON_F_STATS_VQ,
};
use crate::config::devices::BalloonConfig;
use crate::devices::bus::lock;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::mmio::persist::{QueueSnapshot, TransportState};
use crate::snapshot::Persist;

/// The balloon's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalloonState {
    /// `num_pages`: the target, in 4 KiB pages.
    pub target_pages: u32,
    /// `actual`: the pages the driver says it holds.
    pub actual_pages: u32,
    /// `VIRTIO_BALLOON_F_DEFLATE_ON_OOM` is offered.
    pub deflate_on_oom: bool,
    /// Seconds between statistics requests; 0: no stats queue.
    pub stats_polling_interval_s: u16,
    /// The head of the stats buffer the device holds until its next poll.
    pub stats_desc_index: Option<u16>,
    /// The latest statistics, `(tag, value)` by increasing tag.
    pub latest_stats: Vec<(u16, u64)>,
}

/// A balloon state refused.
#[derive(Debug, thiserror::Error)]
pub enum BalloonStateError {
    /// A value no balloon could have had: the field, why.
    #[error("Invalid balloon state: `{0}` {1}")]
    Field(&'static str, String),
    /// The device's eventfd or timer.
    #[error("Cannot restore the balloon")]
    Host(#[source] BalloonError),
}

fn refuse<T>(field: &'static str, reason: String) -> Result<T, BalloonStateError> {
    Err(BalloonStateError::Field(field, reason))
}

/// Chains the device took from queue `q` and has not returned.
fn in_flight(q: &QueueSnapshot) -> u16 {
    (Wrapping(q.next_avail) - Wrapping(q.next_used)).0
}

impl BalloonState {
    fn config(&self) -> BalloonConfig {
        BalloonConfig {
            amount_mib: pages_to_mib(self.target_pages),
            deflate_on_oom: self.deflate_on_oom,
            stats_polling_interval_s: self.stats_polling_interval_s,
        }
    }

    /// What can be checked without the transport or guest memory.
    pub fn validate(&self) -> Result<(), BalloonStateError> {
        if self.target_pages != mib_to_pages(pages_to_mib(self.target_pages)) {
            return refuse(
                "target_pages",
                format!("{} is not a whole number of MiB", self.target_pages),
            );
        }
        let stats = self.stats_polling_interval_s != 0;
        if !stats && self.stats_desc_index.is_some() {
            return refuse(
                "stats_desc_index",
                "is set on a balloon without statistics".into(),
            );
        }
        if !stats && !self.latest_stats.is_empty() {
            return refuse(
                "latest_stats",
                "holds values on a balloon without statistics".into(),
            );
        }
        let mut last = None;
        for &(tag, _) in &self.latest_stats {
            if tag > VIRTIO_BALLOON_S_DIRECT_RECLAIM {
                return refuse("latest_stats", format!("has the unknown tag {tag}"));
            }
            if last.is_some_and(|l| l >= tag) {
                return refuse(
                    "latest_stats",
                    format!("lists tag {tag} out of order or twice"),
                );
            }
            last = Some(tag);
        }
        Ok(())
    }

    /// Checks the state against its transport's (`t`) and the guest's
    /// memory size: the configuration space says the same target and
    /// `actual`, the target fits in memory, and a held stats buffer is the
    /// one chain in flight on an activated stats queue (no other queue
    /// keeps one).
    pub fn check(&self, t: &TransportState, memory_bytes: u64) -> Result<(), BalloonStateError> {
        self.validate()?;
        if u64::from(self.target_pages) << 12 > memory_bytes {
            return refuse(
                "target_pages",
                format!(
                    "{} pages is more than the guest's {} MiB",
                    self.target_pages,
                    memory_bytes >> 20
                ),
            );
        }
        let word = |at: usize| -> Option<u32> {
            let b = t.config.get(at..at + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if t.config.len() != CONFIG_LEN
            || word(NUM_PAGES_OFFSET) != Some(self.target_pages)
            || word(ACTUAL_OFFSET) != Some(self.actual_pages)
        {
            return refuse(
                "target_pages",
                format!(
                    "{} and `actual_pages` {} disagree with the configuration space {:02x?}",
                    self.target_pages, self.actual_pages, t.config
                ),
            );
        }
        let stats_queue = t.driver_features & VIRTIO_BALLOON_F_STATS_VQ != 0;
        for (i, q) in t.queues.iter().enumerate() {
            let held = if t.activated && q.ready {
                in_flight(q)
            } else {
                0
            };
            let want = u16::from(i == STATS_QUEUE && self.stats_desc_index.is_some());
            if held != want {
                return refuse(
                    "stats_desc_index",
                    format!(
                        "is {:?} but queue {i} has {held} chain(s) in flight",
                        self.stats_desc_index
                    ),
                );
            }
        }
        if let Some(head) = self.stats_desc_index {
            let size = t.queues.get(STATS_QUEUE).map_or(0, |q| q.size);
            if !stats_queue || head >= size {
                return refuse(
                    "stats_desc_index",
                    format!("{head} is not a descriptor of an accepted stats queue of {size}"),
                );
            }
        }
        Ok(())
    }
}

impl Persist for BalloonBackend {
    type State = BalloonState;
    type ConstructorArgs = Arc<Interrupt>;
    type Error = BalloonStateError;

    /// On the device thread, paused for a snapshot (the target, `actual`
    /// and interval change at run time).
    fn save(&self) -> BalloonState {
        let shared = &self.shared;
        BalloonState {
            target_pages: shared.config_u32(NUM_PAGES_OFFSET),
            actual_pages: shared.config_u32(ACTUAL_OFFSET),
            deflate_on_oom: shared.deflate_on_oom,
            stats_polling_interval_s: shared.polling_interval_s.load(Ordering::SeqCst),
            stats_desc_index: self.stats_head(),
            latest_stats: lock(&shared.stats).entries(),
        }
    }

    /// The device as saved; its queues come with the transport's
    /// activation. Call [`BalloonState::check`] first.
    fn restore(interrupt: Arc<Interrupt>, state: &BalloonState) -> Result<Self, BalloonStateError> {
        state.validate()?;
        let (_, mut backend, _) =
            create(&state.config(), interrupt).map_err(BalloonStateError::Host)?;
        let (target, actual) = (state.target_pages, state.actual_pages);
        backend.shared.config.update(|b| {
            b[NUM_PAGES_OFFSET..NUM_PAGES_OFFSET + 4].copy_from_slice(&target.to_le_bytes());
            b[ACTUAL_OFFSET..ACTUAL_OFFSET + 4].copy_from_slice(&actual.to_le_bytes());
        });
        let mut stats = lock(&backend.shared.stats);
        for &(tag, val) in &state.latest_stats {
            stats.set(tag, val);
        }
        drop(stats);
        backend.restored_stats_head = state.stats_desc_index;
        Ok(backend)
    }
}

#[cfg(test)]
mod tests;
