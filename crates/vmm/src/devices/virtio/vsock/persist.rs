//! The vsock device in a snapshot, as Firecracker does it: the guest's
//! CID and the host socket path are kept, connections are not (their host
//! ends belong to the old VMM process). After a restore the device binds
//! `uds_path` again and tells the guest, with a
//! `VIRTIO_VSOCK_EVENT_TRANSPORT_RESET` on the event queue, that every
//! connection is gone; the guest driver then resets its sockets.
//!
//! The muxer keeps its CID and path private, so the state is taken from
//! the configuration the device was built from (they never change).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::{create, BoundPath, VsockBackend, VsockError};
use crate::config::devices::VsockConfig;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::mmio::DeviceInfo;
use crate::devices::virtio::queue::{complete, pop, Popped};

/// The event queue's index.
pub const EVENT_QUEUE: usize = 2;
/// `VIRTIO_VSOCK_EVENT_TRANSPORT_RESET` (virtio 1.2, 5.10.6.7).
pub const EVENT_TRANSPORT_RESET: u32 = 0;
/// Lowest CID a guest may have (0-2 are the hypervisor, local and host).
const MIN_GUEST_CID: u32 = 3;

/// The vsock device's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockState {
    /// The guest's context id.
    pub guest_cid: u32,
    /// The host side's Unix socket.
    pub uds_path: PathBuf,
}

/// A vsock state refused.
#[derive(Debug, thiserror::Error)]
pub enum VsockStateError {
    /// A field that cannot be right.
    #[error("Invalid vsock device state: `{0}` {1}")]
    Field(&'static str, String),
    /// The socket cannot be bound again.
    #[error("Cannot restore the vsock device")]
    Host(#[source] VsockError),
}

impl VsockState {
    /// The state of the device built from `config`.
    pub fn of(config: &VsockConfig) -> Self {
        VsockState {
            guest_cid: config.guest_cid,
            uds_path: config.uds_path.clone(),
        }
    }

    /// Checks what does not need the host: a guest CID and a path.
    pub fn validate(&self) -> Result<(), VsockStateError> {
        if self.guest_cid < MIN_GUEST_CID || self.guest_cid == u32::MAX {
            return Err(VsockStateError::Field(
                "guest_cid",
                format!(
                    "is {}, a guest's CID is 3 to {}",
                    self.guest_cid,
                    u32::MAX - 1
                ),
            ));
        }
        if self.uds_path.as_os_str().is_empty() {
            return Err(VsockStateError::Field("uds_path", "is empty".into()));
        }
        Ok(())
    }

    /// The device again, listening on `uds_path` (which must not exist:
    /// a killed VMM leaves its socket behind, and vessel does not remove
    /// what it did not create), as [`create`] returns it.
    pub fn restore(
        &self,
        interrupt: Arc<Interrupt>,
    ) -> Result<(DeviceInfo, VsockBackend, BoundPath), VsockStateError> {
        self.validate()?;
        let config = VsockConfig {
            vsock_id: None,
            guest_cid: self.guest_cid,
            uds_path: self.uds_path.clone(),
        };
        create(&config, interrupt).map_err(VsockStateError::Host)
    }
}

/// Puts a `TRANSPORT_RESET` event in the guest's first event buffer and
/// interrupts it; the restored transport runs this on the restored queues
/// before the device thread gets them. Without an event buffer (a driver
/// that posted none, or a broken ring) the guest is not told, as in
/// Firecracker.
pub fn transport_reset(queues: &mut [Queue], mem: &GuestMemoryMmap, interrupt: &Interrupt) {
    let Some(queue) = queues.get_mut(EVENT_QUEUE) else {
        return;
    };
    let (head, len) = match pop(queue, mem) {
        Ok(Some(Popped::Chain(chain))) => {
            let event = EVENT_TRANSPORT_RESET.to_le_bytes();
            let n = chain.write_at(mem, 0, &event);
            (chain.head, u32::try_from(n).unwrap_or(0))
        }
        Ok(Some(Popped::Bad(bad))) => (bad.head, 0),
        Ok(None) | Err(_) => return,
    };
    if complete(queue, mem, head, len).is_ok() {
        interrupt.signal_used_queue();
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::*;
    use crate::devices::virtio::interrupt::IrqLine;
    use crate::devices::virtio::queue::tests::{Driver, USED};
    use virtio_queue::{QueueOwnedT, QueueT};

    #[test]
    fn the_guest_gets_a_transport_reset_in_its_event_buffer() {
        let mut d = Driver::new();
        d.mem
            .write_slice(&[0xff; 8], GuestAddress(0x8000))
            .expect("fill");
        d.chain(0, &[(0x8000, 8, true)]);
        d.publish(0);
        let mut queues: Vec<Queue> = (0..2).map(|_| Queue::new(16).expect("queue")).collect();
        queues.push(std::mem::replace(&mut d.queue, Queue::new(16).expect("q")));
        let irq = Interrupt::new(IrqLine::None);
        transport_reset(&mut queues, &d.mem, &irq);
        let mut event = [0u8; 8];
        d.mem
            .read_slice(&mut event, GuestAddress(0x8000))
            .expect("read");
        assert_eq!(event, [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let used_idx: u16 = d.mem.read_obj(GuestAddress(USED + 2)).expect("used idx");
        assert_eq!(used_idx, 1);
        let used_len: u32 = d.mem.read_obj(GuestAddress(USED + 8)).expect("used len");
        assert_eq!(used_len, 4);
        assert_eq!(irq.status(), 1, "the guest was interrupted");
        assert_eq!(queues[EVENT_QUEUE].next_used(), 1);
        assert!(queues[EVENT_QUEUE]
            .iter(&d.mem)
            .expect("iter")
            .next()
            .is_none());

        // No buffer left: nothing happens, nothing breaks.
        transport_reset(&mut queues, &d.mem, &irq);
        let used_idx: u16 = d.mem.read_obj(GuestAddress(USED + 2)).expect("used idx");
        assert_eq!(used_idx, 1);
        // Fewer queues than a vsock device has: ignored.
        transport_reset(&mut queues[..1], &d.mem, &irq);
    }

    #[test]
    fn a_bad_cid_or_path_is_refused_by_name() {
        let good = VsockState {
            guest_cid: 3,
            uds_path: "/tmp/v.sock".into(),
        };
        assert!(good.validate().is_ok());
        for (field, bad) in [
            (
                "guest_cid",
                VsockState {
                    guest_cid: 2,
                    ..good.clone()
                },
            ),
            (
                "guest_cid",
                VsockState {
                    guest_cid: u32::MAX,
                    ..good.clone()
                },
            ),
            (
                "uds_path",
                VsockState {
                    uds_path: PathBuf::new(),
                    ..good.clone()
                },
            ),
        ] {
            let err = bad.validate().expect_err(field).to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn restore_binds_the_socket_and_refuses_a_leftover_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = VsockState {
            guest_cid: 7,
            uds_path: dir.path().join("v.sock"),
        };
        let irq = Arc::new(Interrupt::new(IrqLine::None));
        let (info, backend, bound) = state.restore(irq.clone()).expect("restore");
        let mut cid = [0u8; 8];
        info.config.read(0, &mut cid);
        assert_eq!(u64::from_le_bytes(cid), 7);
        assert!(state.uds_path.exists());
        drop((backend, bound));
        assert!(!state.uds_path.exists());
        // A killed VMM's socket is still there: refused by name.
        std::fs::write(&state.uds_path, "").expect("leftover");
        let err = state.restore(irq).expect_err("socket exists");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("v.sock")), "{err}");
    }
}
