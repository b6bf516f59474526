//! Rate limiters for device I/O, with Firecracker's shape: two token
//! buckets, one for bytes (bandwidth) and one for operations, each with a
//! size, an optional one-time burst and a refill time in milliseconds. A
//! device asks [`RateLimiter::consume`] before each request; when a bucket
//! is short, the request waits, and the limiter's timer (a timerfd the
//! device thread polls) fires when enough tokens are back.

use std::time::{Duration, Instant};

use vmm_sys_util::timerfd::TimerFd;

use crate::config::devices::{RateLimiterConfig, TokenBucketConfig};

/// One bucket of tokens, refilled continuously.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    size: u64,
    refill_ns: u128,
    budget: u64,
    burst: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket; `None` when `size` or `refill_time` is 0 (no limit).
    pub fn new(config: &TokenBucketConfig) -> Option<Self> {
        if config.size == 0 || config.refill_time == 0 {
            return None;
        }
        Some(TokenBucket {
            size: config.size,
            refill_ns: u128::from(config.refill_time) * 1_000_000,
            budget: config.size,
            burst: config.one_time_burst.unwrap_or(0),
            last: Instant::now(),
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let tokens = elapsed * u128::from(self.size) / self.refill_ns;
        if tokens > 0 {
            let tokens = u64::try_from(tokens).unwrap_or(u64::MAX);
            self.budget = self.budget.saturating_add(tokens).min(self.size);
            // Keep the remainder: time not yet worth a token is not lost.
            let used_ns = u128::from(tokens) * self.refill_ns / u128::from(self.size);
            self.last += Duration::from_nanos(u64::try_from(used_ns).unwrap_or(u64::MAX));
            if self.budget == self.size {
                self.last = now;
            }
        }
    }

    /// How long until `tokens` are there (zero when they are).
    fn wait_for(&mut self, tokens: u64, now: Instant) -> Duration {
        self.refill(now);
        // A request larger than the bucket would never fit: it goes
        // through once the bucket is full, as in Firecracker.
        let tokens = tokens.min(self.size);
        let have = self.budget.saturating_add(self.burst);
        if have >= tokens {
            return Duration::ZERO;
        }
        let missing = u128::from(tokens - have);
        let ns = (missing * self.refill_ns).div_ceil(u128::from(self.size));
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)).max(Duration::from_micros(100))
    }

    fn take(&mut self, tokens: u64) {
        let tokens = tokens.min(self.size);
        let from_burst = tokens.min(self.burst);
        self.burst -= from_burst;
        self.budget = self.budget.saturating_sub(tokens - from_burst);
    }

    /// Tokens available now (for tests and metrics).
    pub fn available(&mut self) -> u64 {
        self.refill(Instant::now());
        self.budget.saturating_add(self.burst)
    }
}

/// Bandwidth and operations buckets, and the timer that ends a wait.
#[derive(Debug)]
pub struct RateLimiter {
    bandwidth: Option<TokenBucket>,
    ops: Option<TokenBucket>,
    timer: TimerFd,
    blocked: bool,
}

impl RateLimiter {
    /// A limiter for `config` (no config: no limit).
    pub fn new(config: Option<&RateLimiterConfig>) -> std::io::Result<Self> {
        Ok(RateLimiter {
            bandwidth: config.and_then(|c| c.bandwidth.as_ref().and_then(TokenBucket::new)),
            ops: config.and_then(|c| c.ops.as_ref().and_then(TokenBucket::new)),
            timer: TimerFd::new().map_err(std::io::Error::from)?,
            blocked: false,
        })
    }

    /// Whether any bucket limits anything.
    pub fn is_limited(&self) -> bool {
        self.bandwidth.is_some() || self.ops.is_some()
    }

    /// Takes `bytes` and one operation if both buckets have them; otherwise
    /// takes nothing, arms the timer and returns `false` (retry when it
    /// fires).
    pub fn consume(&mut self, bytes: u64) -> bool {
        if self.blocked {
            return false;
        }
        let now = Instant::now();
        let wait = [
            self.bandwidth.as_mut().map(|b| b.wait_for(bytes, now)),
            self.ops.as_mut().map(|b| b.wait_for(1, now)),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Duration::ZERO);
        if wait.is_zero() {
            if let Some(b) = &mut self.bandwidth {
                b.take(bytes);
            }
            if let Some(b) = &mut self.ops {
                b.take(1);
            }
            return true;
        }
        // A timer that cannot be armed would stall the device for good;
        // let the request through instead.
        if self.timer.reset(wait, None).is_err() {
            return true;
        }
        self.blocked = true;
        false
    }

    /// Whether a request is waiting for the timer.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// The timer to poll for readability.
    pub fn timer(&self) -> &TimerFd {
        &self.timer
    }

    /// The timer fired: requests may be retried.
    pub fn timer_fired(&mut self) {
        let _ = self.timer.wait();
        self.blocked = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(size: u64, burst: Option<u64>, refill_time: u64) -> TokenBucketConfig {
        TokenBucketConfig {
            size,
            one_time_burst: burst,
            refill_time,
        }
    }

    #[test]
    fn ops_bucket_blocks_then_the_timer_releases() {
        let config = RateLimiterConfig {
            bandwidth: None,
            ops: Some(bucket(2, None, 1000)),
        };
        let mut l = RateLimiter::new(Some(&config)).expect("limiter");
        assert!(l.consume(0));
        assert!(l.consume(0));
        assert!(!l.consume(0), "a third op within a second");
        assert!(l.is_blocked());
        assert!(l.timer().is_armed().expect("timer"));
        // The timer fires after about half a second (one op's refill).
        l.timer_fired();
        assert!(l.consume(0));
    }

    #[test]
    fn burst_is_spent_first_and_large_requests_pass_when_full() {
        let mut b = TokenBucket::new(&bucket(1000, Some(500), 1000)).expect("bucket");
        assert_eq!(b.available(), 1500);
        let now = Instant::now();
        assert!(b.wait_for(1500, now).is_zero());
        b.take(600);
        assert_eq!(b.burst, 0);
        assert_eq!(b.budget, 900);
        // Bigger than the bucket: capped at its size.
        let wait = b.wait_for(10_000, now);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(101),
            "{wait:?}"
        );
    }

    #[test]
    fn no_config_or_zero_size_means_no_limit() {
        let mut l = RateLimiter::new(None).expect("limiter");
        assert!(!l.is_limited());
        for _ in 0..1000 {
            assert!(l.consume(1 << 30));
        }
        assert!(TokenBucket::new(&bucket(0, None, 100)).is_none());
    }
}
