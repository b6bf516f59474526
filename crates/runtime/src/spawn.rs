//! The runtime side of `create`: fork the init and drive it until it is ready.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};
use vessel_cgroups::CgroupManager;

use crate::error::{Result, RuntimeError};
use crate::hooks::{self, HookKind, HookState};
use crate::init::{self, InitContext};
use crate::sys::fork::{fork, Forked};
use crate::sys::sync::{SyncChannel, SyncMsg};

/// Fork the container's init and carry it through setup.
///
/// `host_setup` runs right after the fork, while stage 1 creates the
/// namespaces and the init its mounts: it creates the container's cgroup
/// (which may wait for the kernel, see `cgroup_warmup`) and returns it. The
/// init waits for it at its cgroup gate.
///
/// On success the init is blocked on the exec FIFO and its host pid is
/// returned. On failure every process started here has been killed.
pub fn spawn_init<'c>(
    ctx: InitContext,
    host_setup: impl FnOnce() -> Result<&'c dyn CgroupManager>,
) -> Result<Pid> {
    let (parent_end, child_end) =
        SyncChannel::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    let spec = ctx.spec.clone();
    let id = ctx.id.clone();
    let bundle = ctx.bundle.clone();
    let stage1 = match fork().map_err(|e| RuntimeError::sys("fork", e))? {
        Forked::Child => {
            drop(parent_end);
            init::stage1(ctx, child_end)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(ctx);
    let mut init_pid: Option<Pid> = None;
    let result = host_setup().and_then(|cgroup| {
        drive(
            &parent_end,
            stage1,
            &mut init_pid,
            cgroup,
            &spec,
            &id,
            &bundle,
        )
    });
    if result.is_err() {
        kill_all(&parent_end, stage1, init_pid);
    } else if init_pid != Some(stage1) {
        // Stage 1 exits right after forking the init when the pid namespace
        // changes; reap it so it leaves no zombie (it is our child).
        let _ = waitpid(stage1, None);
    }
    result.and_then(|()| {
        init_pid
            .ok_or_else(|| RuntimeError::InitDied("the init reported ready without its pid".into()))
    })
}

fn drive(
    chan: &SyncChannel,
    stage1: Pid,
    init_pid: &mut Option<Pid>,
    cgroup: &dyn CgroupManager,
    spec: &Spec,
    id: &str,
    bundle: &std::path::Path,
) -> Result<()> {
    let join = |pid: Pid| {
        cgroup
            .add_task(pid.as_raw())
            .map_err(|e| RuntimeError::Cgroup {
                id: id.to_owned(),
                source: e,
            })
    };
    // Stage 1 does not wait for this (see init::cgroup_gate): the kernel's
    // wait in the first write overlaps with its namespaces and the init's
    // mounts. An init it forks before the write lands is moved below.
    join(stage1)?;
    loop {
        let msg = chan
            .recv()
            .map_err(|e| died(stage1, *init_pid, e.to_string()))?;
        match msg {
            SyncMsg::MapRequest { pid } => {
                write_id_maps(pid, spec)?;
                send(chan, &SyncMsg::MapDone)?;
            }
            SyncMsg::Pid { pid } => {
                let pid = Pid::from_raw(pid);
                *init_pid = Some(pid);
                if pid != stage1 {
                    join(pid)?;
                }
                if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
                    let path = format!("/proc/{pid}/oom_score_adj");
                    std::fs::write(&path, adj.to_string()).map_err(|e| {
                        RuntimeError::io("process.oomScoreAdj: cannot write", path, e)
                    })?;
                }
                send(chan, &SyncMsg::Joined)?;
            }
            SyncMsg::RunCreateHooks => {
                let state = HookState {
                    oci_version: spec.version(),
                    id,
                    status: "creating",
                    pid: init_pid.map(|p| p.as_raw()),
                    bundle: bundle.to_str().unwrap_or(""),
                    annotations: spec.annotations().as_ref(),
                };
                hooks::run_all(HookKind::Prestart, spec.hooks().as_ref(), &state)?;
                hooks::run_all(HookKind::CreateRuntime, spec.hooks().as_ref(), &state)?;
                send(chan, &SyncMsg::HooksDone)?;
            }
            SyncMsg::Ready => return Ok(()),
            SyncMsg::Error { chain } => return Err(RuntimeError::from_chain(&chain)),
            other => {
                return Err(RuntimeError::InitDied(format!(
                    "unexpected message {other:?}"
                )))
            }
        }
    }
}

/// Kill what `create` started after a failure: stage 1, and the init if
/// stage 1 forked one. An init whose pid is still unread in the channel is
/// found there once stage 1 is dead (stage 1 always sends the pid before it
/// exits; an init whose stage 1 died before that exits on its own).
fn kill_all(chan: &SyncChannel, stage1: Pid, init_pid: Option<Pid>) {
    let _ = kill(stage1, Signal::SIGKILL);
    if let Some(pid) = init_pid {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let _ = waitpid(stage1, None);
    while let Ok(Some(msg)) = chan.try_recv() {
        if let SyncMsg::Pid { pid } = msg {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn send(chan: &SyncChannel, msg: &SyncMsg) -> Result<()> {
    chan.send(msg)
        .map_err(|e| RuntimeError::InitDied(e.to_string()))
}

/// Describe how the init went away, with its exit status when we can reap it.
fn died(stage1: Pid, init_pid: Option<Pid>, what: String) -> RuntimeError {
    if init_pid.is_none() || init_pid == Some(stage1) {
        if let Ok(status) = waitpid(stage1, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            return RuntimeError::InitDied(format!("{what}; {status:?}"));
        }
    }
    RuntimeError::InitDied(what)
}

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write `uid_map` and `gid_map` of the user namespace `pid` created.
fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for (file, maps, field) in [
        (
            "uid_map",
            linux.and_then(|l| l.uid_mappings().as_ref()),
            "linux.uidMappings",
        ),
        (
            "gid_map",
            linux.and_then(|l| l.gid_mappings().as_ref()),
            "linux.gidMappings",
        ),
    ] {
        let Some(maps) = maps else { continue };
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, format_map(maps)).map_err(|e| RuntimeError::Io {
            action: if field == "linux.uidMappings" {
                "linux.uidMappings: cannot write"
            } else {
                "linux.gidMappings: cannot write"
            },
            path: path.into(),
            source: e,
        })?;
    }
    Ok(())
}
