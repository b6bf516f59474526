//! A network interface in a snapshot: its id, tap name, MAC and rate
//! limiters (their buckets restart full). Queue positions are the
//! transport's; the device gives every chain back within the event that
//! took it (a chain a limiter holds back is put back on the ring), so the
//! used rings hold them. A frame read from the tap and still waiting for
//! an RX buffer is not kept: to the guest it is a frame lost on the wire.
//! The tap must exist again when the snapshot is restored (the old VMM's
//! attachment ended with it).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::handle::Limits;
use super::{create, DeviceInfo, NetBackend, NetError, NetHandle};
use crate::config::devices::{NetConfig, RateLimiterConfig};
use crate::devices::virtio::interrupt::Interrupt;
use crate::snapshot::limits::LimiterState;

/// A network interface's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetState {
    /// `iface_id`.
    pub iface_id: String,
    /// The tap.
    pub host_dev_name: String,
    /// `guest_mac`, as configured (the guest's own choice otherwise).
    pub guest_mac: Option<String>,
    /// Frames to the guest.
    pub rx_rate_limiter: Option<LimiterState>,
    /// Frames from the guest.
    pub tx_rate_limiter: Option<LimiterState>,
}

/// A net state refused.
#[derive(Debug, thiserror::Error)]
pub enum NetStateError {
    /// A value the configuration would have refused: its field, why.
    #[error("Invalid network interface state: `{0}` {1}")]
    Field(String, String),
    /// The tap cannot be attached again.
    #[error("Cannot restore the network interface")]
    Host(#[source] NetError),
}

impl NetState {
    /// The state of the interface built from `config`.
    pub fn of(config: &NetConfig) -> Self {
        NetState {
            iface_id: config.iface_id.clone(),
            host_dev_name: config.host_dev_name.clone(),
            guest_mac: config.guest_mac.clone(),
            rx_rate_limiter: config.rx_rate_limiter.as_ref().map(LimiterState::from),
            tx_rate_limiter: config.tx_rate_limiter.as_ref().map(LimiterState::from),
        }
    }

    /// `PATCH /network-interfaces` changed the limiters: a snapshot keeps
    /// the new ones.
    pub fn set_limits(&mut self, limits: Limits) {
        self.rx_rate_limiter = limits.rx.as_ref().map(LimiterState::from);
        self.tx_rate_limiter = limits.tx.as_ref().map(LimiterState::from);
    }

    fn config(&self) -> NetConfig {
        NetConfig {
            iface_id: self.iface_id.clone(),
            host_dev_name: self.host_dev_name.clone(),
            guest_mac: self.guest_mac.clone(),
            rx_rate_limiter: self.rx_rate_limiter.as_ref().map(RateLimiterConfig::from),
            tx_rate_limiter: self.tx_rate_limiter.as_ref().map(RateLimiterConfig::from),
        }
    }

    /// Checks what does not need the host, with the configuration's rules
    /// (id, tap name, MAC, buckets), naming the field.
    pub fn validate(&self) -> Result<(), NetStateError> {
        self.config()
            .check("net")
            .map_err(|e| NetStateError::Field(e.field, e.reason))
    }

    /// The device again on its tap, as [`create`] returns it.
    pub fn restore(
        &self,
        interrupt: Arc<Interrupt>,
    ) -> Result<(DeviceInfo, NetBackend, NetHandle), NetStateError> {
        self.validate()?;
        create(&self.config(), interrupt).map_err(NetStateError::Host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::devices::TokenBucketConfig;
    use crate::devices::virtio::interrupt::IrqLine;

    fn state() -> NetState {
        NetState::of(&NetConfig {
            iface_id: "eth0".into(),
            host_dev_name: "vsslnotap3".into(),
            guest_mac: Some("06:00:0a:00:02:0f".into()),
            rx_rate_limiter: None,
            tx_rate_limiter: Some(RateLimiterConfig {
                bandwidth: None,
                ops: Some(TokenBucketConfig {
                    size: 10,
                    one_time_burst: Some(5),
                    refill_time: 100,
                }),
            }),
        })
    }

    #[test]
    fn a_state_round_trips_and_keeps_patched_limits() {
        let mut s = state();
        let bytes = postcard::to_stdvec(&s).expect("encode");
        let back: NetState = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, s);
        assert!(back.validate().is_ok());
        s.set_limits(Limits {
            rx: s.config().tx_rate_limiter,
            tx: None,
        });
        assert_eq!(s.tx_rate_limiter, None);
        assert_eq!(s.rx_rate_limiter, back.tx_rate_limiter);
    }

    #[test]
    fn bad_states_are_refused_naming_the_field() {
        let irq = Arc::new(Interrupt::new(IrqLine::None));
        for (change, want) in [
            (
                (|s: &mut NetState| s.iface_id = "a b".into()) as fn(&mut NetState),
                "net.iface_id",
            ),
            (|s| s.host_dev_name = "../../x".into(), "net.host_dev_name"),
            (|s| s.host_dev_name = "x".repeat(16), "net.host_dev_name"),
            (
                |s| s.guest_mac = Some("ff:ff:ff:ff:ff:ff".into()),
                "net.guest_mac",
            ),
            (|s| s.guest_mac = Some("06:00".into()), "net.guest_mac"),
        ] {
            let mut s = state();
            change(&mut s);
            let Err(e) = s.restore(irq.clone()) else {
                panic!("{s:?} restored");
            };
            let msg = vessel_testkit::error_chain(&e);
            assert!(msg.contains(want), "{msg}");
        }
        // Valid, but the tap is gone: named.
        let Err(e) = state().restore(irq) else {
            panic!("restored without a tap");
        };
        let msg = vessel_testkit::error_chain(&e);
        assert!(msg.contains("\"vsslnotap3\" does not exist"), "{msg}");
    }
}
