//! The point in the init's setup that needs it to be in its cgroup.
//!
//! The runtime's first write of a pid to `cgroup.procs` waits for an RCU
//! grace period in the kernel (6–8 ms on an idle machine here, more under
//! load; see docs/runtime.md). So `create` does not make the init wait for it
//! before doing anything: stage 1 is moved into the cgroup while it creates
//! the namespaces and forks the init, and the init builds its mounts
//! meanwhile. Only what depends on the cgroup waits here for the runtime's
//! `Joined`: creating the cgroup namespace (its root is the cgroup the process
//! is in), mounting cgroup filesystems, running hooks, and anything after
//! that, up to the exec of the user program. Nothing of the container's
//! program runs outside its cgroup.

use std::cell::Cell;

use nix::sched::CloneFlags;

use super::expect;
use crate::error::{Result, RuntimeError};
use crate::sys::sync::{SyncChannel, SyncMsg};

/// Waits once for the runtime's `Joined`, then lets everything through.
#[derive(Debug)]
pub struct CgroupGate<'a> {
    chan: &'a SyncChannel,
    new_cgroupns: bool,
    passed: Cell<bool>,
}

impl<'a> CgroupGate<'a> {
    /// A closed gate; `new_cgroupns` says whether passing it creates the
    /// container's cgroup namespace.
    pub fn new(chan: &'a SyncChannel, new_cgroupns: bool) -> Self {
        CgroupGate {
            chan,
            new_cgroupns,
            passed: Cell::new(false),
        }
    }

    /// Block until the runtime has moved us into the container's cgroup (the
    /// first call only), then create the cgroup namespace if one is asked for.
    pub fn pass(&self) -> Result<()> {
        if self.passed.get() {
            return Ok(());
        }
        expect(self.chan, SyncMsg::Joined)?;
        if self.new_cgroupns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| RuntimeError::sys("unshare cgroup namespace", e))?;
        }
        self.passed.set(true);
        Ok(())
    }
}
