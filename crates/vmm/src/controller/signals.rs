//! SIGTERM and SIGINT stop `vessel vm run` cleanly: the VMM thread stops
//! the vCPUs and the API server (which removes its socket) as when the
//! guest ends. The signals are blocked in the VMM thread before any other
//! thread exists, so every thread inherits the mask and none is killed by
//! the default action; one thread (`vessel-signals`, under the VMM seccomp
//! filter) waits for them with `sigwait` and hands each to the VMM thread.

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

/// Blocks the stop signals in the calling thread (and so in every thread
/// it creates afterwards) and starts the thread that waits for them; each
/// one received is passed to `on_signal`.
pub(super) fn start(
    confine: bool,
    on_signal: impl Fn(i32) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
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
    // Confined before any other thread starts; without this thread the
    // blocked signals would never be seen, so its failure is the start's.
    match confined.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Err(std::io::Error::other("the signal thread ended at once")),
    }
}
