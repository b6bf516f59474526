//! Waiting for the kernel to reach a state (the freezer finishes asynchronously).

use std::thread;
use std::time::{Duration, Instant};

use crate::error::Result;

/// Longest pause between two checks: short enough that `pause` returns promptly, long enough
/// not to spin on a busy host.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Calls `check` until it returns `true` or `timeout` has passed; returns whether it did.
/// Pauses start at 100 µs and grow, since a small cgroup usually freezes within a millisecond.
pub(crate) fn until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
