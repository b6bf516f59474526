//! The balloon's device thread: the inflate queue (pages discarded), the
//! deflate queue (pages checked and returned), and the stats queue, whose
//! one buffer the device keeps until its polling timer fires and it gives
//! the buffer back to ask the driver for fresh numbers (virtio 1.x
//! 5.5.6.3).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use event_manager::{EventOps, EventSet, Events};
use virtio_queue::{Queue, QueueState, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::timerfd::TimerFd;

use super::handle::{BalloonHandle, Shared};
use super::pfn::{self, PfnReport};
use super::stats::{self, MAX_STATS_BYTES};
use super::{DEFLATE_QUEUE, INFLATE_QUEUE, STATS_QUEUE, VIRTIO_BALLOON_F_STATS_VQ};
use crate::devices::bus::lock;
use crate::devices::virtio::queue::{complete, pop, serve, Popped, Served};
use crate::devices::virtio::worker::{Activation, Backend, FIRST_DEVICE_TAG};
use crate::snapshot::state::MmioDeviceState;
use crate::snapshot::Persist;

/// Data tag of the statistics polling timer.
pub const STATS_TIMER_TAG: u32 = FIRST_DEVICE_TAG;
/// Data tag of the "polling interval changed" eventfd.
pub const INTERVAL_TAG: u32 = FIRST_DEVICE_TAG + 1;

/// The queues once the driver handed them over.
#[derive(Debug)]
struct Active {
    mem: GuestMemoryMmap,
    queues: Vec<Queue>,
    /// Whether the driver accepted the stats queue.
    stats: bool,
    /// The stats buffer the device holds, to give back on the next poll.
    stats_head: Option<u16>,
}

/// The device thread's half of the balloon.
#[derive(Debug)]
pub struct BalloonBackend {
    pub(super) shared: Arc<Shared>,
    timer: TimerFd,
    active: Option<Active>,
    /// A snapshot's held stats buffer, taken back on the next activation
    /// (the restored queues' positions count it as in flight).
    pub(super) restored_stats_head: Option<u16>,
}

impl BalloonBackend {
    pub(super) fn new(shared: Arc<Shared>) -> std::io::Result<Self> {
        let timer = TimerFd::new().map_err(std::io::Error::from)?;
        // Non-blocking: a re-arm between epoll and the read leaves nothing
        // to read, and the thread must not block there.
        // SAFETY: F_SETFL on a descriptor this function owns; no memory
        // is passed.
        let rc = unsafe { libc::fcntl(timer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(BalloonBackend {
            shared,
            timer,
            active: None,
            restored_stats_head: None,
        })
    }

    /// The VMM thread's handle on this balloon.
    pub fn handle(&self) -> BalloonHandle {
        BalloonHandle::new(self.shared.clone())
    }

    /// The stats buffer the device holds (or, restored and not yet
    /// activated, will hold).
    pub(super) fn stats_head(&self) -> Option<u16> {
        match &self.active {
            Some(a) => a.stats_head,
            None => self.restored_stats_head,
        }
    }

    /// The queue `index` if the driver made it ready.
    fn queue(&mut self, index: usize) -> Option<(&GuestMemoryMmap, &mut Queue)> {
        let a = self.active.as_mut()?;
        let q = a.queues.get_mut(index).filter(|q| q.ready())?;
        Some((&a.mem, q))
    }

    fn log(&self, queue: &str, chain: u16, r: &PfnReport) {
        if r.is_clean() {
            return;
        }
        self.shared.warn(|| {
            let mut msg = format!("{queue} chain {chain}:");
            if r.outside > 0 {
                msg.push_str(&format!(
                    " {} PFN(s) outside guest memory ignored (first {:#x})",
                    r.outside,
                    r.first_outside.unwrap_or_default()
                ));
            }
            if r.failed > 0 {
                msg.push_str(&format!(" madvise failed on {} page(s)", r.failed));
            }
            if r.trailing > 0 {
                msg.push_str(&format!(
                    " {} byte(s) after the last whole PFN ignored",
                    r.trailing
                ));
            }
            if r.dropped > 0 {
                msg.push_str(&format!(
                    " {} PFN(s) past the limit of {} ignored",
                    r.dropped,
                    pfn::MAX_PFNS_PER_CHAIN
                ));
            }
            msg
        });
    }

    /// Serves the inflate queue: each chain's pages are discarded.
    pub(super) fn inflate(&mut self) {
        self.serve_pages(INFLATE_QUEUE, "inflate", pfn::discard);
    }

    /// Serves the deflate queue: the guest takes pages back by touching
    /// them (no `VIRTIO_BALLOON_F_MUST_TELL_HOST`), so there is nothing
    /// to do but check and return the list.
    pub(super) fn deflate(&mut self) {
        self.serve_pages(DEFLATE_QUEUE, "deflate", pfn::check);
    }

    fn serve_pages(
        &mut self,
        index: usize,
        name: &str,
        apply: fn(&GuestMemoryMmap, &mut Vec<u32>, &mut PfnReport),
    ) {
        let interrupt = self.shared.interrupt.clone();
        let mut reports = Vec::new();
        let Some((mem, queue)) = self.queue(index) else {
            return;
        };
        serve(queue, mem, &interrupt, |chain| {
            let (mut pfns, mut report) = pfn::read(chain, mem);
            apply(mem, &mut pfns, &mut report);
            reports.push((chain.head, report));
            Served::Done(0)
        });
        for (head, report) in reports {
            self.log(name, head, &report);
        }
    }

    /// Takes the driver's stats buffers: applies each, keeps the last
    /// (an earlier one held goes back).
    pub(super) fn stats(&mut self) {
        let shared = self.shared.clone();
        let Some(a) = self.active.as_mut().filter(|a| a.stats) else {
            return;
        };
        let Some(queue) = a.queues.get_mut(STATS_QUEUE).filter(|q| q.ready()) else {
            return;
        };
        let mut notify = false;
        let mut trailing = Vec::new();
        loop {
            let give_back = match pop(queue, &a.mem) {
                Ok(None) => break,
                Err(_) => {
                    shared.interrupt.set_needs_reset();
                    return;
                }
                Ok(Some(Popped::Bad(bad))) => Some(bad.head),
                Ok(Some(Popped::Chain(chain))) => {
                    let len = chain.readable_len().min(MAX_STATS_BYTES as u64);
                    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    let n = chain.read_at(&a.mem, 0, &mut buf);
                    let report = stats::apply(&buf[..n], &mut lock(&shared.stats));
                    if report.trailing > 0 {
                        trailing.push((chain.head, report.trailing));
                    }
                    a.stats_head.replace(chain.head)
                }
            };
            if let Some(head) = give_back {
                match complete(queue, &a.mem, head, 0) {
                    Ok(n) => notify |= n,
                    Err(_) => {
                        shared.interrupt.set_needs_reset();
                        return;
                    }
                }
            }
        }
        if notify {
            shared.interrupt.signal_used_queue();
        }
        for (head, bytes) in trailing {
            shared.warn(|| {
                format!("stats chain {head}: {bytes} byte(s) after the last whole entry ignored")
            });
        }
    }

    /// The polling timer fired: give the held buffer back, which asks the
    /// driver for new statistics.
    pub(super) fn poll_stats(&mut self) {
        let interrupt = self.shared.interrupt.clone();
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let Some(head) = a.stats_head.take() else {
            return;
        };
        let Some(queue) = a.queues.get_mut(STATS_QUEUE) else {
            return;
        };
        match complete(queue, &a.mem, head, 0) {
            Ok(true) => interrupt.signal_used_queue(),
            Ok(false) => {}
            Err(_) => interrupt.set_needs_reset(),
        }
    }

    /// Takes the driver's queues; whether it accepted the stats queue.
    pub(super) fn take_queues(&mut self, a: Activation) -> bool {
        let stats = a.features & VIRTIO_BALLOON_F_STATS_VQ != 0;
        // Only the first activation after a restore holds the buffer.
        let restored = self.restored_stats_head.take();
        self.active = Some(Active {
            mem: a.mem,
            queues: a.queues,
            stats,
            stats_head: restored.filter(|_| stats),
        });
        self.shared.active.store(true, Ordering::SeqCst);
        stats
    }

    /// Fuzzing entry point (`fuzz/fuzz_targets/virtio_balloon.rs`): takes
    /// `a`'s queues and serves them as the device thread would: inflate,
    /// deflate, statistics, a poll giving the held buffer back, and the
    /// statistics the driver posted meanwhile.
    #[doc(hidden)]
    pub fn fuzz_serve(&mut self, a: Activation) {
        self.take_queues(a);
        self.inflate();
        self.deflate();
        self.stats();
        self.poll_stats();
        self.stats();
    }

    /// Arms the polling timer: the first request at once or after one
    /// interval, then every interval; disarmed when statistics are off.
    fn arm_timer(&mut self, at_once: bool) {
        let seconds = self.shared.polling_interval_s.load(Ordering::SeqCst);
        let stats = self.active.as_ref().is_some_and(|a| a.stats);
        // A timer that cannot be armed only means no fresh statistics.
        let _ = if seconds == 0 || !stats {
            self.timer.clear()
        } else {
            let every = Duration::from_secs(u64::from(seconds));
            // The shortest wait a timerfd takes (zero would disarm it).
            let first = if at_once {
                Duration::from_nanos(1)
            } else {
                every
            };
            self.timer.reset(first, Some(every))
        };
    }
}

impl Backend for BalloonBackend {
    fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        if self.take_queues(a) {
            let _ = ops.add(Events::with_data(
                &self.timer,
                STATS_TIMER_TAG,
                EventSet::IN,
            ));
            let _ = ops.add(Events::with_data(
                &self.shared.interval_changed,
                INTERVAL_TAG,
                EventSet::IN,
            ));
            self.arm_timer(false);
        }
        self.inflate();
        self.deflate();
        self.stats();
    }

    fn queue_event(&mut self, index: usize, _ops: &mut EventOps) {
        match index {
            INFLATE_QUEUE => self.inflate(),
            DEFLATE_QUEUE => self.deflate(),
            STATS_QUEUE => self.stats(),
            _ => {}
        }
    }

    fn device_event(&mut self, tag: u32, _events: EventSet, _ops: &mut EventOps) {
        match tag {
            STATS_TIMER_TAG => {
                let _ = self.timer.wait();
                self.poll_stats();
            }
            INTERVAL_TAG => {
                let _ = self.shared.interval_changed.read();
                // Firecracker's rule: a new interval asks at once.
                self.arm_timer(true);
            }
            _ => {}
        }
    }

    /// The balloon holds its stats buffer across events, so the queues'
    /// positions come from here rather than from the used rings.
    fn queue_states(&self) -> Option<Vec<QueueState>> {
        let a = self.active.as_ref()?;
        Some(a.queues.iter().map(|q| q.state()).collect())
    }

    /// Read here, with the thread paused: the target and the polling
    /// interval change at run time, `actual` whenever the driver writes.
    fn snapshot_state(&self) -> Option<MmioDeviceState> {
        Some(MmioDeviceState::Balloon(self.save()))
    }

    fn reset(&mut self, ops: &mut EventOps) {
        if self.active.as_ref().is_some_and(|a| a.stats) {
            let _ = ops.remove(Events::with_data(
                &self.timer,
                STATS_TIMER_TAG,
                EventSet::IN,
            ));
            let _ = ops.remove(Events::with_data(
                &self.shared.interval_changed,
                INTERVAL_TAG,
                EventSet::IN,
            ));
        }
        let _ = self.timer.clear();
        self.active = None;
        self.shared.active.store(false, Ordering::SeqCst);
    }
}
