//! What the VMM thread tells running vCPU threads: stop for good, or park
//! (pause) until resumed. The flags are read at the top of each vCPU loop
//! iteration; a kick signal (see the parent module) makes a vCPU inside
//! KVM_RUN come back to read them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Shared between the VMM thread and every vCPU thread of one VM.
#[derive(Debug)]
pub struct VcpuControl {
    stop: AtomicBool,
    /// Fast check for the vCPU loop; the truth is `state.paused`.
    pause_requested: AtomicBool,
    state: Mutex<ParkState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ParkState {
    paused: bool,
    /// vCPU threads waiting in [`VcpuControl::park`].
    parked: usize,
    /// vCPU threads whose loop has ended.
    gone: usize,
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
        while s.paused && s.parked + s.gone < vcpus && !self.should_stop() {
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

    /// Called by a vCPU thread that saw [`VcpuControl::should_park`]:
    /// waits until resumed or stopped.
    pub fn park(&self) {
        let mut s = self.lock();
        if !s.paused {
            return;
        }
        s.parked += 1;
        self.changed.notify_all();
        while s.paused && !self.should_stop() {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.parked -= 1;
    }

    /// Called by a vCPU thread when its loop has ended, whatever the reason.
    pub fn vcpu_gone(&self) {
        let mut s = self.lock();
        s.gone += 1;
        self.changed.notify_all();
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
        control.vcpu_gone();
        let c = control.clone();
        let parked = std::thread::spawn(move || c.park());
        control.wait_parked(2);
        control.request_stop();
        parked.join().unwrap();
        assert!(control.should_stop());
    }
}
