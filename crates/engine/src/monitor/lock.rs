//! The monitor's liveness lock: `<container dir>/monitor.lock`, held with an
//! exclusive `flock` by the monitor for as long as it runs.
//!
//! The kernel drops a flock when the last descriptor of its open file goes
//! away, so the lock is free exactly when the monitor is gone — after a
//! clean exit, after `kill -9`, after a reboot — without pids that can be
//! reused. Other vessel processes use it to tell a live container from a
//! stale record ([`is_held`]) and to wait for the end ([`wait_released`]).
//! The descriptor is close-on-exec, so the container's processes (forked
//! by the monitor, then exec'd) never hold it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{EngineError, Result};

/// The lock file of the container whose directory is `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("monitor.lock")
}

fn open(dir: &Path) -> Result<File> {
    let p = path(dir);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .map_err(EngineError::io("cannot open", p))
}

/// The held lock: the monitor keeps it until it exits.
#[derive(Debug)]
pub struct MonitorLock(#[allow(dead_code)] Flock<File>);

impl MonitorLock {
    /// Take the lock; `None` if another monitor holds it. A probe by
    /// [`is_held`] holds a shared lock for microseconds, so a conflict is
    /// retried for a few milliseconds before it counts as a monitor.
    pub fn try_acquire(dir: &Path) -> Result<Option<MonitorLock>> {
        let mut file = open(dir)?;
        for _ in 0..50 {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(Some(MonitorLock(l))),
                Err((f, nix::Error::EWOULDBLOCK)) => file = f,
                Err((_, source)) => {
                    return Err(EngineError::Sys {
                        call: "flock(monitor.lock)",
                        source,
                    })
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(None)
    }
}

impl std::os::fd::AsRawFd for MonitorLock {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Whether a monitor runs for the container in `dir`.
pub fn is_held(dir: &Path) -> Result<bool> {
    if !path(dir).exists() {
        return Ok(false);
    }
    match Flock::lock(open(dir)?, FlockArg::LockSharedNonblock) {
        Ok(_probe) => Ok(false),
        Err((_, nix::Error::EWOULDBLOCK)) => Ok(true),
        Err((_, source)) => Err(EngineError::Sys {
            call: "flock(monitor.lock)",
            source,
        }),
    }
}

/// Block until no monitor runs for the container in `dir`.
pub fn wait_released(dir: &Path) -> Result<()> {
    if !path(dir).exists() {
        return Ok(());
    }
    let file = open(dir)?;
    loop {
        match Flock::lock(
            file.try_clone()
                .map_err(EngineError::io("cannot wait for", path(dir)))?,
            FlockArg::LockShared,
        ) {
            Ok(_released_on_drop) => return Ok(()),
            Err((_, nix::Error::EINTR)) => continue,
            Err((_, source)) => {
                return Err(EngineError::Sys {
                    call: "flock(monitor.lock)",
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_while_the_lock_lives() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_held(dir.path()).unwrap());
        let lock = MonitorLock::try_acquire(dir.path()).unwrap().unwrap();
        assert!(is_held(dir.path()).unwrap());
        assert!(MonitorLock::try_acquire(dir.path()).unwrap().is_none());
        drop(lock);
        assert!(!is_held(dir.path()).unwrap());
        wait_released(dir.path()).unwrap();
    }
}
