//! The device thread's half of virtio-net: frames from the TX queue to the
//! tap, frames from the tap into the RX queue, each direction under its
//! own rate limiter (bytes of Ethernet frame, and one operation per frame).
//!
//! Back pressure instead of buffering: at most one frame read from the tap
//! waits for the guest (no RX buffer, or the RX limiter said not yet), and
//! while it waits the tap is not polled, so the tap's own queue holds the
//! rest and the host sees the drops a full NIC would cause. A TX chain the
//! TX limiter holds back stays on the queue until the timer fires.
//!
//! The limiters can be replaced while the device runs (through its
//! [`NetHandle`]); a frame or chain held back by the old one is tried
//! again under the new one.

use std::sync::Arc;

use event_manager::{EventOps, EventSet, Events};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::frame::{self, MAX_BUFFER_LEN, VNET_HDR_LEN};
use super::handle::{Limits, NetHandle, Shared};
use super::tap::Tap;
use crate::devices::bus::lock;
use crate::devices::virtio::interrupt::Interrupt;
use crate::devices::virtio::queue::{self, Popped, Served};
use crate::devices::virtio::worker::{Activation, Backend, FIRST_DEVICE_TAG};
use crate::metrics::METRICS;
use crate::rate_limiter::RateLimiter;

/// Queue indices (virtio-net without multiqueue).
pub const RX_QUEUE: usize = 0;
/// The transmit queue.
pub const TX_QUEUE: usize = 1;

/// Data tags of the device's own descriptors.
const TAP_TAG: u32 = FIRST_DEVICE_TAG;
const RX_TIMER_TAG: u32 = FIRST_DEVICE_TAG + 1;
const TX_TIMER_TAG: u32 = FIRST_DEVICE_TAG + 2;
const LIMITS_TAG: u32 = FIRST_DEVICE_TAG + 3;

/// Queues once the driver is ready.
#[derive(Debug)]
struct Active {
    mem: GuestMemoryMmap,
    rx: Queue,
    tx: Queue,
}

/// virtio-net on a tap.
#[derive(Debug)]
pub struct NetBackend {
    tap: Tap,
    interrupt: Arc<Interrupt>,
    rx_limiter: RateLimiter,
    tx_limiter: RateLimiter,
    active: Option<Active>,
    /// A frame from the tap (with its header) and its length while it
    /// waits for an RX buffer or the RX limiter.
    rx_frame: Box<[u8]>,
    rx_pending: Option<usize>,
    tx_frame: Box<[u8]>,
    tap_polled: bool,
    limits: Arc<Shared>,
}

impl NetBackend {
    /// A device `iface_id` on `tap` under `limits`, not active yet, and
    /// the VMM thread's handle on it. Fails when a timer or an eventfd
    /// cannot be created.
    pub fn new(
        iface_id: &str,
        tap: Tap,
        interrupt: Arc<Interrupt>,
        limits: Limits,
    ) -> std::io::Result<(Self, NetHandle)> {
        let (handle, shared) = NetHandle::new(iface_id)?;
        let backend = NetBackend {
            tap,
            interrupt,
            rx_limiter: RateLimiter::new(limits.rx.as_ref())?,
            tx_limiter: RateLimiter::new(limits.tx.as_ref())?,
            active: None,
            rx_frame: vec![0u8; MAX_BUFFER_LEN].into_boxed_slice(),
            rx_pending: None,
            tx_frame: vec![0u8; MAX_BUFFER_LEN].into_boxed_slice(),
            tap_polled: false,
            limits: shared,
        };
        Ok((backend, handle))
    }

    /// Takes limiters the handle sent, if any: the old timers leave `ops`
    /// and the new ones join it (when active), and whatever waited is
    /// tried again.
    pub fn apply_limits(&mut self, mut ops: Option<&mut EventOps>) {
        let _ = self.limits.wake.read();
        let Some(limits) = lock(&self.limits.pending).take() else {
            return;
        };
        // A timer that cannot be created keeps the limiters as they were.
        let (Ok(rx), Ok(tx)) = (
            RateLimiter::new(limits.rx.as_ref()),
            RateLimiter::new(limits.tx.as_ref()),
        ) else {
            return;
        };
        let active = self.active.is_some();
        if let (Some(ops), true) = (ops.as_deref_mut(), active) {
            self.limiter_events(&mut |e| {
                let _ = ops.remove(e);
            });
        }
        self.rx_limiter = rx;
        self.tx_limiter = tx;
        if let (Some(ops), true) = (ops, active) {
            self.limiter_events(&mut |e| {
                let _ = ops.add(e);
            });
        }
        self.process_tx();
        self.process_rx();
    }

    /// Takes the queues (RX, TX) the driver set up.
    pub fn start(&mut self, a: Activation) {
        let mut queues = a.queues.into_iter();
        let (Some(rx), Some(tx)) = (queues.next(), queues.next()) else {
            return;
        };
        // Only offloads the driver accepted; if the tap refuses, it keeps
        // none, which any driver can take.
        let _ = self.tap.set_offload(frame::tap_offload(a.features));
        self.active = Some(Active { mem: a.mem, rx, tx });
    }

    /// Forgets the queues and any frame waiting for them.
    pub fn stop(&mut self) {
        self.active = None;
        self.rx_pending = None;
    }

    /// Whether the tap should be polled: active, and no frame waiting.
    pub fn wants_tap(&self) -> bool {
        self.active.is_some() && self.rx_pending.is_none()
    }

    /// The frame waiting for the guest, if any (tests).
    pub fn pending_rx(&self) -> Option<&[u8]> {
        self.rx_pending.map(|n| &self.rx_frame[..n])
    }

    /// Sends every TX chain the limiter lets through to the tap. A chain
    /// that is not a frame goes back unsent; a frame the tap refuses is
    /// dropped, as a NIC drops it.
    pub fn process_tx(&mut self) {
        let Some(active) = &mut self.active else {
            return;
        };
        let (tap, limiter, buf) = (&self.tap, &mut self.tx_limiter, &mut self.tx_frame);
        let mem = &active.mem;
        queue::serve(&mut active.tx, mem, &self.interrupt, |chain| {
            let cost = chain.readable_len().saturating_sub(VNET_HDR_LEN as u64);
            if !limiter.consume(cost) {
                return Served::Later;
            }
            let metrics = &METRICS.net;
            match frame::read_tx(chain, mem, buf) {
                Ok(n) => match tap.write_frame(&buf[..n]) {
                    Ok(_) => {
                        metrics.tx_packets_count.inc();
                        metrics.tx_bytes_count.add((n - VNET_HDR_LEN) as u64);
                    }
                    Err(_) => metrics.tx_fails.inc(),
                },
                Err(_) => metrics.tx_malformed_frames.inc(),
            }
            Served::Done(0)
        });
    }

    /// Moves frames from the tap into RX buffers until the tap is empty,
    /// the guest has no buffer, or the RX limiter says wait.
    pub fn process_rx(&mut self) {
        let Some(active) = &mut self.active else {
            return;
        };
        let mem = &active.mem;
        let mut notify = false;
        let healthy = loop {
            let len = match self.rx_pending {
                Some(len) => len,
                None => match self.tap.read_frame(&mut self.rx_frame) {
                    // A frame without its header cannot come from a tap.
                    Ok(n) if n < VNET_HDR_LEN => continue,
                    Ok(n) => {
                        self.rx_pending = Some(n);
                        n
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    // A tap gone down: polled again later.
                    Err(_) => {
                        METRICS.net.rx_fails.inc();
                        break true;
                    }
                },
            };
            let (head, used) = match queue::pop(&mut active.rx, mem) {
                Ok(None) => break true,
                Err(_) => break false,
                // Not a buffer: returned empty, the frame tries the next.
                Ok(Some(Popped::Bad(bad))) => (bad.head, 0),
                Ok(Some(Popped::Chain(chain))) => {
                    if !self.rx_limiter.consume((len - VNET_HDR_LEN) as u64) {
                        queue::unpop(&mut active.rx);
                        break true;
                    }
                    self.rx_pending = None;
                    // A buffer that cannot hold the frame goes back empty
                    // and the frame is dropped.
                    let used = match frame::write_rx(&chain, mem, &mut self.rx_frame[..len]) {
                        Ok(used) => {
                            METRICS.net.rx_packets_count.inc();
                            METRICS.net.rx_bytes_count.add((len - VNET_HDR_LEN) as u64);
                            used
                        }
                        Err(_) => {
                            METRICS.net.rx_fails.inc();
                            0
                        }
                    };
                    (chain.head, used)
                }
            };
            match queue::complete(&mut active.rx, mem, head, used) {
                Ok(n) => notify |= n,
                Err(_) => break false,
            }
        };
        if !healthy {
            self.interrupt.set_needs_reset();
        } else if notify {
            self.interrupt.signal_used_queue();
        }
    }

    fn limiter_events(&self, f: &mut impl FnMut(Events)) {
        for (limiter, tag) in [
            (&self.rx_limiter, RX_TIMER_TAG),
            (&self.tx_limiter, TX_TIMER_TAG),
        ] {
            if limiter.is_limited() {
                f(Events::with_data(limiter.timer(), tag, EventSet::IN));
            }
        }
    }

    /// Polls the tap exactly when [`NetBackend::wants_tap`].
    fn sync_tap(&mut self, ops: &mut EventOps) {
        let want = self.wants_tap();
        if want == self.tap_polled {
            return;
        }
        let events = Events::with_data(&self.tap, TAP_TAG, EventSet::IN);
        let done = if want {
            ops.add(events)
        } else {
            ops.remove(events)
        };
        if done.is_ok() {
            self.tap_polled = want;
        }
    }
}

impl Backend for NetBackend {
    fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        self.start(a);
        let _ = ops.add(Events::with_data(
            &self.limits.wake,
            LIMITS_TAG,
            EventSet::IN,
        ));
        self.limiter_events(&mut |e| {
            let _ = ops.add(e);
        });
        // Limits patched before the driver was ready.
        self.apply_limits(Some(ops));
        self.process_tx();
        self.process_rx();
        self.sync_tap(ops);
    }

    fn queue_event(&mut self, index: usize, ops: &mut EventOps) {
        if index == TX_QUEUE {
            self.process_tx();
        } else {
            self.process_rx();
            self.sync_tap(ops);
        }
    }

    fn device_event(&mut self, tag: u32, _events: EventSet, ops: &mut EventOps) {
        match tag {
            TX_TIMER_TAG => {
                self.tx_limiter.timer_fired();
                self.process_tx();
            }
            RX_TIMER_TAG => self.rx_limiter.timer_fired(),
            LIMITS_TAG => self.apply_limits(Some(ops)),
            _ => {}
        }
        if tag != TX_TIMER_TAG {
            self.process_rx();
            self.sync_tap(ops);
        }
    }

    fn reset(&mut self, ops: &mut EventOps) {
        let _ = ops.remove(Events::with_data(
            &self.limits.wake,
            LIMITS_TAG,
            EventSet::IN,
        ));
        self.limiter_events(&mut |e| {
            let _ = ops.remove(e);
        });
        self.stop();
        self.sync_tap(ops);
    }
}
