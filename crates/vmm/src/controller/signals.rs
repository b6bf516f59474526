//! SIGTERM and SIGINT stop `vessel vm run` cleanly: the VMM thread stops
//! the vCPUs and the API server (which removes its socket) as when the
//! guest ends. The signals are blocked in the VMM thread before any other
//! thread exists, so every thread inherits the mask and none is killed by
//! the default action; one thread (`vessel-signals`, under the VMM seccomp
//! filter) waits for them with `sigwait` and hands each to the VMM thread.

use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::seccomp::{self, ThreadKind};

/// The signals that stop the VMM.
fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}

/// The thread waiting for the stop signals, and whether it has confined
/// itself yet.
pub(super) struct SignalThread {
    _thread: JoinHandle<()>,
    confined: Option<Receiver<Result<(), String>>>,
}

impl SignalThread {
    /// Waits until the thread has installed its seccomp filter (at once if
    /// it already said so). Called before the guest runs, where the VMM
    /// thread confines itself: the thread's start overlaps the VM's
    /// creation instead of delaying it (a new thread can wait milliseconds
    /// for a CPU on a busy host). Its failure is the start's: without this
    /// thread the blocked signals would never be seen.
    pub(super) fn wait_confined(&mut self) -> std::io::Result<()> {
        let Some(confined) = self.confined.take() else {
            return Ok(());
        };
        match confined.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::Error::other("the signal thread ended at once")),
        }
    }
}

/// Blocks the stop signals in the calling thread (and so in every thread
/// it creates afterwards) and starts the thread that waits for them; each
/// one received is passed to `on_signal`. The thread confines itself with
/// the VMM filter; [`SignalThread::wait_confined`] waits for that.
pub(super) fn start(
    confine: bool,
    on_signal: impl Fn(i32) + Send + 'static,
) -> std::io::Result<SignalThread> {
    let set = stop_signals();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(std::io::Error::from)?;
    let (ready, confined) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("vessel-signals".into())
        .spawn(move || {
            let installed = if confine {
                seccomp::install(ThreadKind::Vmm).map_err(|e| e.to_string())
            } else {
                Ok(())
            };
            let ok = installed.is_ok();
            let _ = ready.send(installed);
            if !ok {
                return;
            }
            while let Ok(signal) = set.wait() {
                on_signal(signal as i32);
            }
        })?;
    Ok(SignalThread {
        _thread: thread,
        confined: Some(confined),
    })
}
