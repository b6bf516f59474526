//! A rate limiter's configuration in a snapshot (its buckets restart
//! full: the tokens left at the snapshot are not kept, as the restored
//! guest's clock has moved anyway). Its own type rather than
//! [`RateLimiterConfig`]: that one is the API's JSON, whose optional
//! fields are skipped when absent, which postcard cannot read back.

use serde::{Deserialize, Serialize};

use crate::config::devices::{RateLimiterConfig, TokenBucketConfig};

/// One token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    /// Tokens the bucket holds.
    pub size: u64,
    /// Extra tokens usable once.
    pub one_time_burst: Option<u64>,
    /// Milliseconds to refill `size`.
    pub refill_time: u64,
}

/// A rate limiter's buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterState {
    /// Bytes.
    pub bandwidth: Option<BucketState>,
    /// Operations.
    pub ops: Option<BucketState>,
}

impl From<&TokenBucketConfig> for BucketState {
    fn from(b: &TokenBucketConfig) -> Self {
        BucketState {
            size: b.size,
            one_time_burst: b.one_time_burst,
            refill_time: b.refill_time,
        }
    }
}

impl From<&BucketState> for TokenBucketConfig {
    fn from(b: &BucketState) -> Self {
        TokenBucketConfig {
            size: b.size,
            one_time_burst: b.one_time_burst,
            refill_time: b.refill_time,
        }
    }
}

impl From<&RateLimiterConfig> for LimiterState {
    fn from(c: &RateLimiterConfig) -> Self {
        LimiterState {
            bandwidth: c.bandwidth.as_ref().map(BucketState::from),
            ops: c.ops.as_ref().map(BucketState::from),
        }
    }
}

impl From<&LimiterState> for RateLimiterConfig {
    fn from(s: &LimiterState) -> Self {
        RateLimiterConfig {
            bandwidth: s.bandwidth.as_ref().map(TokenBucketConfig::from),
            ops: s.ops.as_ref().map(TokenBucketConfig::from),
        }
    }
}
