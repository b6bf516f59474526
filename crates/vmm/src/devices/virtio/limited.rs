//! The common shape of a one-queue device (block, entropy): the queue once
//! the driver hands it over, the interrupt, and a rate limiter whose timer
//! the device thread polls.

use std::sync::Arc;

use event_manager::{EventOps, EventSet, Events};
use virtio_queue::{Queue, QueueState};
use vm_memory::GuestMemoryMmap;

use super::interrupt::Interrupt;
use super::queue::{serve, Chain, Served};
use super::worker::{Activation, FIRST_DEVICE_TAG};
use crate::rate_limiter::RateLimiter;

/// Data tag of the rate limiter's timer.
pub const TIMER_TAG: u32 = FIRST_DEVICE_TAG;

/// A rate-limited queue served on the device thread.
#[derive(Debug)]
pub struct LimitedQueue {
    interrupt: Arc<Interrupt>,
    limiter: RateLimiter,
    active: Option<(GuestMemoryMmap, Queue)>,
}

impl LimitedQueue {
    /// Not active yet.
    pub fn new(interrupt: Arc<Interrupt>, limiter: RateLimiter) -> Self {
        LimitedQueue {
            interrupt,
            limiter,
            active: None,
        }
    }

    /// Takes queue 0 and polls the limiter's timer.
    pub fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        let Some(queue) = a.queues.into_iter().next() else {
            return;
        };
        self.active = Some((a.mem, queue));
        if self.limiter.is_limited() {
            let _ = ops.add(Events::with_data(
                self.limiter.timer(),
                TIMER_TAG,
                EventSet::IN,
            ));
        }
    }

    /// Drops the queue and stops polling the timer.
    pub fn reset(&mut self, ops: &mut EventOps) {
        if self.limiter.is_limited() {
            let _ = ops.remove(Events::with_data(
                self.limiter.timer(),
                TIMER_TAG,
                EventSet::IN,
            ));
        }
        self.active = None;
    }

    /// The queue's state, if active (for a snapshot).
    pub fn queue_states(&self) -> Option<Vec<QueueState>> {
        self.active.as_ref().map(|(_, q)| vec![q.state()])
    }

    /// Whether `tag` was the timer (it is then read, and requests may go).
    pub fn timer_event(&mut self, tag: u32) -> bool {
        if tag != TIMER_TAG {
            return false;
        }
        self.limiter.timer_fired();
        true
    }

    /// Serves the queue: each chain costs `cost(chain)` bytes (and one
    /// operation) and is answered with `handle(chain)` bytes written.
    pub fn serve(
        &mut self,
        cost: impl Fn(&Chain, &GuestMemoryMmap) -> u64,
        mut handle: impl FnMut(&Chain, &GuestMemoryMmap) -> u32,
    ) {
        let Some((mem, queue)) = &mut self.active else {
            return;
        };
        let limiter = &mut self.limiter;
        serve(queue, mem, &self.interrupt, |chain| {
            if !limiter.consume(cost(chain, mem)) {
                return Served::Later;
            }
            Served::Done(handle(chain, mem))
        });
    }
}
