//! `exec`: run another process inside a live container.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};
use vessel_cgroups::CgroupManager;

use crate::container::{write_pid_file, Container, ContainerStatus};
use crate::error::{Result, RuntimeError};
use crate::namespaces::{clone_flag, proc_name};
use crate::process::{self, Finalize};
use crate::sys::fork::{exit_child, fork, Forked};
use crate::sys::proc::ns_inode;
use crate::sys::sync::{SyncChannel, SyncMsg};

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process to run.
    pub process: Process,
    /// Return as soon as the process started.
    pub detach: bool,
    /// Where to write its pid.
    pub pid_file: Option<PathBuf>,
    /// Socket that receives the pty master when `process.terminal`.
    pub console_socket: Option<PathBuf>,
    /// Extra descriptors passed on.
    pub preserve_fds: i32,
}

/// The order in which an exec'd process enters the container's namespaces:
/// user first (it grants the rights to join the rest), mount last.
const JOIN_ORDER: [LinuxNamespaceType; 7] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

/// Start `opts.process` in `container`; returns the host pid of the process.
///
/// The caller must be a child subreaper (so that the process, a grandchild,
/// is reparented to it) if it wants to wait for it.
pub fn exec(container: &Container, opts: &ExecOptions) -> Result<Pid> {
    let status = container.status();
    if !matches!(status, ContainerStatus::Created | ContainerStatus::Running) {
        return Err(RuntimeError::WrongState {
            id: container.id().to_owned(),
            status: status.to_string(),
            operation: "exec (the container is not running)",
        });
    }
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::InvalidConfig {
            field: "process.args".into(),
            reason: "must name the program to run".into(),
        });
    }
    if !p.cwd().is_absolute() {
        return Err(RuntimeError::InvalidConfig {
            field: "process.cwd".into(),
            reason: format!("{} is not an absolute path", p.cwd().display()),
        });
    }
    let spec = container.spec()?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(vessel_seccomp::compile(profile).map_err(RuntimeError::Seccomp)?),
        None => None,
    };
    let console = connect_console(p, opts)?;
    let cgroup = container.cgroup()?;
    let init = container.state.pid;

    // Namespaces the init has that we do not share.
    let mut joins = Vec::new();
    for typ in JOIN_ORDER {
        let name = proc_name(typ);
        let theirs = PathBuf::from(format!("/proc/{init}/ns/{name}"));
        if ns_inode(&theirs) != ns_inode(&PathBuf::from(format!("/proc/self/ns/{name}"))) {
            let fd = std::fs::File::open(&theirs)
                .map_err(|e| RuntimeError::io("cannot open namespace", &theirs, e))?;
            joins.push((typ, OwnedFd::from(fd)));
        }
    }

    let (parent_end, child_end) =
        SyncChannel::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    let stage1 = match fork().map_err(|e| RuntimeError::sys("fork", e))? {
        Forked::Child => {
            drop(parent_end);
            let err = match exec_child(
                &child_end,
                &joins,
                p,
                seccomp.as_ref(),
                console.as_ref(),
                opts.preserve_fds,
            ) {
                Ok(e) | Err(e) => e,
            };
            let _ = child_end.send(&SyncMsg::Error { chain: err.chain() });
            exit_child(126)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(console);
    let mut target: Option<Pid> = None;
    let result = drive_exec(&parent_end, stage1, &cgroup, &mut target, container.id());
    let _ = waitpid(stage1, None);
    if let Err(e) = result {
        if let Some(t) = target {
            let _ = kill(t, Signal::SIGKILL);
        }
        return Err(e);
    }
    let pid = target.ok_or_else(|| RuntimeError::InitDied("exec: no pid reported".into()))?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid.as_raw())?;
    }
    Ok(pid)
}

fn connect_console(p: &Process, opts: &ExecOptions) -> Result<Option<OwnedFd>> {
    if !p.terminal().unwrap_or(false) {
        return Ok(None);
    }
    let path = opts
        .console_socket
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig {
            field: "process.terminal".into(),
            reason: "a terminal needs --console-socket to hand the pty master to".into(),
        })?;
    let s =
        std::os::unix::net::UnixStream::connect(path).map_err(|e| RuntimeError::ConsoleSocket {
            path: path.clone(),
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    Ok(Some(s.into()))
}

fn drive_exec(
    chan: &SyncChannel,
    stage1: Pid,
    cgroup: &dyn CgroupManager,
    target: &mut Option<Pid>,
    id: &str,
) -> Result<()> {
    cgroup
        .add_task(stage1.as_raw())
        .map_err(|e| RuntimeError::Cgroup {
            id: id.to_owned(),
            source: e,
        })?;
    chan.send(&SyncMsg::Go)
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
    loop {
        match chan.recv() {
            Ok(SyncMsg::Pid { pid }) => *target = Some(Pid::from_raw(pid)),
            Ok(SyncMsg::Ready) => {}
            Ok(SyncMsg::Error { chain }) => return Err(RuntimeError::from_chain(&chain)),
            Ok(other) => {
                return Err(RuntimeError::InitDied(format!(
                    "unexpected message {other:?}"
                )))
            }
            // The channel is close-on-exec: end of file after Ready means execve succeeded.
            Err(crate::sys::sync::SyncError::Closed) if target.is_some() => return Ok(()),
            Err(e) => return Err(RuntimeError::InitDied(e.to_string())),
        }
    }
}

fn exec_child(
    chan: &SyncChannel,
    joins: &[(LinuxNamespaceType, OwnedFd)],
    p: &Process,
    seccomp: Option<&vessel_seccomp::CompiledProfile>,
    console_sock: Option<&OwnedFd>,
    preserve_fds: i32,
) -> Result<RuntimeError> {
    // A process of the runtime inside the container must not be inspectable
    // (ptrace, /proc/PID/mem, /proc/PID/exe) by the container's processes.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| RuntimeError::sys("prctl(PR_SET_DUMPABLE)", e))?;
    match chan.recv() {
        Ok(SyncMsg::Go) => {}
        other => {
            return Err(RuntimeError::InitDied(format!(
                "expected Go, got {other:?}"
            )))
        }
    }
    for (typ, fd) in joins {
        let flag = clone_flag(*typ).unwrap_or(CloneFlags::empty());
        nix::sched::setns(fd, flag)
            .map_err(|e| RuntimeError::sys(format!("setns {}", proc_name(*typ)), e))?;
    }
    // Entering a pid namespace takes effect for children only.
    match fork().map_err(|e| RuntimeError::sys("fork into the container", e))? {
        Forked::Parent(child) => {
            let _ = chan.send(&SyncMsg::Pid {
                pid: child.as_raw(),
            });
            exit_child(0)
        }
        Forked::Child => {}
    }
    nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    let executable = process::prepare(p, console_sock)?;
    chan.send(&SyncMsg::Ready)
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
    Ok(process::finalize_and_exec(&Finalize {
        process: p,
        executable: &executable,
        seccomp,
        preserve_fds,
    }))
}
