//! The VMM thread's handle on an interface: `PATCH
//! /network-interfaces/{id}` gives it new rate limiters, which the device
//! thread takes when the handle's eventfd wakes it (or when the driver
//! becomes ready, if the update came before).

use std::sync::{Arc, Mutex};

use vmm_sys_util::eventfd::EventFd;

use crate::config::devices::{RateLimiterConfig, TokenBucketConfig};
use crate::devices::bus::lock;

/// An interface's rate limiters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Frames to the guest.
    pub rx: Option<RateLimiterConfig>,
    /// Frames from the guest.
    pub tx: Option<RateLimiterConfig>,
}

/// Shared by the handle and the device thread.
#[derive(Debug)]
pub(super) struct Shared {
    pub pending: Mutex<Option<Limits>>,
    pub wake: EventFd,
}

/// The VMM thread's end.
#[derive(Debug, Clone)]
pub struct NetHandle {
    iface_id: String,
    shared: Arc<Shared>,
}

impl NetHandle {
    pub(super) fn new(iface_id: &str) -> std::io::Result<(NetHandle, Arc<Shared>)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(None),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
        });
        let handle = NetHandle {
            iface_id: iface_id.to_owned(),
            shared: shared.clone(),
        };
        Ok((handle, shared))
    }

    /// The interface's id.
    pub fn iface_id(&self) -> &str {
        &self.iface_id
    }

    /// Replaces the device's rate limiters (a later call before the device
    /// thread took this one wins).
    pub fn set_limits(&self, limits: Limits) {
        *lock(&self.shared.pending) = Some(limits);
        // A full counter still wakes the thread.
        let _ = self.shared.wake.write(1);
    }
}

/// Firecracker's update rule: a bucket in the patch replaces the one
/// configured (one of size or refill time 0 removes it); a bucket or
/// limiter not in the patch stays as it was.
pub fn patched(
    old: Option<RateLimiterConfig>,
    patch: Option<RateLimiterConfig>,
) -> Option<RateLimiterConfig> {
    let Some(patch) = patch else { return old };
    let old = old.unwrap_or_default();
    let pick = |new: Option<TokenBucketConfig>, old: Option<TokenBucketConfig>| match new {
        Some(b) if b.size == 0 || b.refill_time == 0 => None,
        Some(b) => Some(b),
        None => old,
    };
    let merged = RateLimiterConfig {
        bandwidth: pick(patch.bandwidth, old.bandwidth),
        ops: pick(patch.ops, old.ops),
    };
    (merged != RateLimiterConfig::default()).then_some(merged)
}
