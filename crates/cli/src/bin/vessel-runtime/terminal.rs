//! runc's own terminal for a foreground `run` or `exec` whose process wants
//! a terminal and that was given no `--console-socket`: the runtime listens
//! on a console socket of its own, takes the pty master, and relays it to its
//! own stdio (raw mode while a terminal is attached) until the process exits.
//! Detached runs still need `--console-socket` (nobody would hold the pty).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A console socket the runtime listens on itself.
pub struct OwnConsole {
    path: PathBuf,
    listener: UnixListener,
}

impl OwnConsole {
    /// Listen in `dir` (the runtime's state root) for container `id`.
    pub fn bind(dir: &Path, id: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!(".console-{id}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(OwnConsole { path, listener })
    }

    /// The socket's path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the container's process sent (call after create/exec
    /// returned: the runtime connected and sent it by then).
    pub fn receive(self) -> anyhow::Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .with_context(|| format!("cannot accept on {}", self.path.display()))?;
        Ok(vessel_engine::tty::recv_fd(&stream)?)
    }
}

impl Drop for OwnConsole {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Relay our stdio to `master` until `pid` exits; its exit code.
pub fn relay(master: OwnedFd, pid: nix::unistd::Pid) -> anyhow::Result<i32> {
    Ok(vessel_engine::exec::relay_terminal(master, pid, true)?)
}
