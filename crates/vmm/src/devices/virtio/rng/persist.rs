//! The entropy device in a snapshot: only its rate limiter's buckets
//! (its queue positions are the transport's).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{EntropyConfig, RngBackend};
use crate::config::devices::RateLimiterConfig;
use crate::devices::virtio::interrupt::Interrupt;
use crate::snapshot::limits::LimiterState;
use crate::snapshot::Persist;

/// The entropy device's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The rate limiter's buckets.
    pub rate_limiter: Option<LimiterState>,
}

impl Persist for RngBackend {
    type State = RngState;
    type ConstructorArgs = Arc<Interrupt>;
    type Error = std::io::Error;

    /// Never changes once built: saved when the device is built.
    fn save(&self) -> RngState {
        RngState {
            rate_limiter: self.limits.as_ref().map(LimiterState::from),
        }
    }

    /// Fails only when the limiter's timer cannot be created.
    fn restore(interrupt: Arc<Interrupt>, state: &RngState) -> std::io::Result<Self> {
        let config = EntropyConfig {
            rate_limiter: state.rate_limiter.as_ref().map(RateLimiterConfig::from),
        };
        super::create(&config, interrupt).map(|(_, backend)| backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::devices::TokenBucketConfig;
    use crate::devices::virtio::interrupt::IrqLine;

    #[test]
    fn the_limits_survive_a_round_trip() {
        let limits = RateLimiterConfig {
            bandwidth: None,
            ops: Some(TokenBucketConfig {
                size: 10,
                one_time_burst: None,
                refill_time: 1000,
            }),
        };
        let config = EntropyConfig {
            rate_limiter: Some(limits),
        };
        let irq = Arc::new(Interrupt::new(IrqLine::None));
        let (_, backend) = super::super::create(&config, irq.clone()).expect("create");
        let state = backend.save();
        let bytes = postcard::to_stdvec(&state).expect("encode");
        let back: RngState = postcard::from_bytes(&bytes).expect("decode");
        let restored = RngBackend::restore(irq, &back).expect("restore");
        assert_eq!(restored.limits, Some(limits));
        assert_eq!(restored.save(), state);
    }
}
