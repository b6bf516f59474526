//! Waiting for a container process in the foreground, forwarding signals to it.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forward the usual terminal and job-control signals to `pid`.
pub fn forward_signals_to(pid: Pid) {
    TARGET.store(pid.as_raw(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only calls kill(2), which is async-signal-safe,
        // and reads an atomic.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Wait for `pid` (our child or, as subreaper, our grandchild) and turn its
/// end into a shell-style exit code. Other reparented processes are reaped
/// along the way.
pub fn wait_exit_code(pid: Pid) -> anyhow::Result<i32> {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::ECHILD) => {
                anyhow::bail!("process {pid} is not a child of vessel-runtime")
            }
            Err(e) => return Err(e.into()),
        }
    }
}
