//! What the VMM thread tells running vCPU threads: stop for good, or park
//! (pause) until resumed. The flags are read at the top of each vCPU loop
//! iteration; a kick signal (see the parent module) makes a vCPU inside
//! KVM_RUN come back to read them. A parked vCPU thread also runs jobs the
//! VMM thread hands it for its own vCPU ([`VcpuControl::run_on_parked`]):
//! that is how a snapshot reads each vCPU's state, on the thread that owns
//! the vCPU, while it is out of KVM_RUN.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Work for a parked vCPU thread, on its own vCPU.
pub type ParkedJob = Box<dyn FnOnce(&mut super::Vcpu) + Send>;

/// Shared between the VMM thread and every vCPU thread of one VM.
#[derive(Debug)]
pub struct VcpuControl {
    stop: AtomicBool,
    /// Fast check for the vCPU loop; the truth is `state.paused`.
    pause_requested: AtomicBool,
    state: Mutex<ParkState>,
    changed: Condvar,
}

#[derive(Default)]
struct ParkState {
    paused: bool,
    /// vCPU threads waiting in [`VcpuControl::park`].
    parked: usize,
    /// vCPU threads whose loop has ended, by index.
    gone: Vec<u8>,
    /// Jobs waiting for a parked vCPU thread, by vCPU index.
    jobs: Vec<(u8, ParkedJob)>,
}

impl std::fmt::Debug for ParkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkState")
            .field("paused", &self.paused)
            .field("parked", &self.parked)
            .field("gone", &self.gone)
            .field("jobs", &self.jobs.len())
            .finish()
    }
}

impl Default for VcpuControl {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuControl {
    /// Running, not paused.
    pub fn new() -> Self {
        VcpuControl {
            stop: AtomicBool::new(false),
            pause_requested: AtomicBool::new(false),
            state: Mutex::new(ParkState::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ParkState> {
        // The state stays consistent whatever a panicking holder did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the vCPUs must stop for good.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Asks every vCPU to stop for good (wakes parked ones). The caller
    /// then kicks the threads.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.changed.notify_all();
    }

    /// Whether a pause was asked for (checked by the vCPU loop).
    pub fn should_park(&self) -> bool {
        self.pause_requested.load(Ordering::SeqCst)
    }

    /// Marks the VM paused. The caller then kicks the threads and calls
    /// [`VcpuControl::wait_parked`].
    pub fn request_pause(&self) {
        let mut s = self.lock();
        s.paused = true;
        self.pause_requested.store(true, Ordering::SeqCst);
    }

    /// Waits until each of `vcpus` threads is parked or gone.
    pub fn wait_parked(&self, vcpus: usize) {
        let mut s = self.lock();
        while s.paused && s.parked + s.gone.len() < vcpus && !self.should_stop() {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Lets parked vCPUs run again.
    pub fn resume(&self) {
        let mut s = self.lock();
        s.paused = false;
        self.pause_requested.store(false, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Whether the VM is paused.
    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Called by vCPU thread `index` when it saw
    /// [`VcpuControl::should_park`]: waits until resumed or stopped,
    /// handing each job queued for `index` to `serve` meanwhile.
    pub fn park_serving(&self, index: u8, mut serve: impl FnMut(ParkedJob)) {
        let mut s = self.lock();
        if !s.paused {
            return;
        }
        s.parked += 1;
        self.changed.notify_all();
        while s.paused && !self.should_stop() {
            if let Some(at) = s.jobs.iter().position(|(i, _)| *i == index) {
                let (_, job) = s.jobs.swap_remove(at);
                // The job may take time (KVM calls): not under the lock.
                drop(s);
                serve(job);
                s = self.lock();
                continue;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.parked -= 1;
    }

    /// Parks without serving jobs (a loop that has no vCPU to offer).
    pub fn park(&self) {
        self.park_serving(u8::MAX, drop);
    }

    /// Queues `job` for vCPU `index`, which runs it while parked. Refused
    /// (the job is handed back) when the VM is not paused or that vCPU's
    /// thread has ended; a job still queued when its thread ends is
    /// dropped, so a caller waiting on a channel inside it is woken.
    pub fn run_on_parked(&self, index: u8, job: ParkedJob) -> Result<(), ParkedJob> {
        let mut s = self.lock();
        if !s.paused || s.gone.contains(&index) || self.should_stop() {
            return Err(job);
        }
        s.jobs.push((index, job));
        self.changed.notify_all();
        Ok(())
    }

    /// Called by vCPU thread `index` when its loop has ended, whatever the
    /// reason.
    pub fn vcpu_gone(&self, index: u8) {
        let jobs: Vec<_> = {
            let mut s = self.lock();
            s.gone.push(index);
            self.changed.notify_all();
            let (mine, others) = std::mem::take(&mut s.jobs)
                .into_iter()
                .partition(|(i, _)| *i == index);
            s.jobs = others;
            mine
        };
        // Dropped outside the lock: a job's drop may wake its caller.
        drop(jobs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pause_waits_for_every_vcpu_to_park_and_resume_releases_them() {
        let control = Arc::new(VcpuControl::new());
        control.request_pause();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let c = control.clone();
                std::thread::spawn(move || {
                    assert!(c.should_park());
                    c.park();
                    assert!(!c.is_paused());
                })
            })
            .collect();
        control.wait_parked(3);
        assert!(control.is_paused());
        control.resume();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!control.should_park());
    }

    #[test]
    fn a_gone_vcpu_counts_and_stop_releases_parked_ones() {
        let control = Arc::new(VcpuControl::new());
        control.request_pause();
        control.vcpu_gone(0);
        let c = control.clone();
        let parked = std::thread::spawn(move || c.park());
        control.wait_parked(2);
        control.request_stop();
        parked.join().unwrap();
        assert!(control.should_stop());
    }

    #[test]
    fn jobs_run_on_parked_threads_and_are_refused_when_running_or_gone() {
        let control = Arc::new(VcpuControl::new());
        let noop = || -> ParkedJob { Box::new(|_| {}) };
        assert!(control.run_on_parked(0, noop()).is_err(), "not paused");
        control.request_pause();
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (c, count) = (control.clone(), served.clone());
        let parked = std::thread::spawn(move || {
            c.park_serving(0, |_job| {
                count.fetch_add(1, Ordering::SeqCst);
            })
        });
        control.wait_parked(1);
        assert!(control.run_on_parked(0, noop()).is_ok());
        assert!(control.run_on_parked(0, noop()).is_ok());
        while served.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        // A job for a vCPU that ends is dropped, waking whoever waits on it.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        assert!(control
            .run_on_parked(
                1,
                Box::new(move |_| {
                    let _ = tx.send(());
                })
            )
            .is_ok());
        control.vcpu_gone(1);
        assert!(rx.recv().is_err());
        assert!(control.run_on_parked(1, noop()).is_err(), "gone");
        control.resume();
        parked.join().unwrap();
    }
}
