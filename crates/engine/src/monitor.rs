//! The monitor: the process that runs a container and outlives nothing yet.
//!
//! `run` forks a monitor process that gives the container its stdio, becomes
//! a child subreaper (the container's init is its grandchild when it is
//! forked into a new pid namespace), creates and starts the container
//! through `vessel-runtime`, records `running` with the init's pid, waits for
//! the init, deletes the runtime's container (its cgroup and state) and
//! records `exited` with the exit code. The monitor is the only writer of the
//! state during a run; it reports each step to the caller over a pipe, one
//! JSON line each, so the caller sees a start failure with its whole chain.
//!
//! This is the foreground half of conmon: a detached monitor (double fork,
//! own session, logs) is the next step and will reuse this code unchanged.
//!
//! The monitor is a `fork` of the calling process, so the caller must be
//! single-threaded (as `vessel-runtime`'s create requires; the `vessel` CLI
//! starts no threads) or at least have no other thread holding a lock.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use vessel_runtime::sys::fork::{exit_child, fork, Forked};
use vessel_runtime::{Container, CreateOptions as RtCreate, DeleteOptions, StateStore};

use crate::error::{EngineError, Result};
use crate::record::Status;
use crate::store::ContainerStore;

/// The container process's standard streams.
#[derive(Debug)]
pub struct Stdio {
    /// Standard input; `/dev/null` when `None`.
    pub stdin: Option<OwnedFd>,
    /// Standard output.
    pub stdout: OwnedFd,
    /// Standard error.
    pub stderr: OwnedFd,
}

impl Stdio {
    /// stdout and stderr both to `out` (stdin from /dev/null).
    pub fn to_file(out: &File) -> Result<Stdio> {
        let dup = |f: &File| {
            f.try_clone()
                .map(OwnedFd::from)
                .map_err(EngineError::io("cannot dup", "stdio"))
        };
        Ok(Stdio {
            stdin: None,
            stdout: dup(out)?,
            stderr: dup(out)?,
        })
    }
}

/// What the monitor tells the caller.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Report {
    /// The container runs with this init pid.
    Started(i32),
    /// The container could not start; the error chain.
    Failed(Vec<String>),
    /// The container exited with this code.
    Exited(i32),
}

/// Run container `id` (bundle = its directory in `store`) to its end, with
/// `stdio`, in a monitor process; returns its exit code (128+N for signal N).
pub fn run_foreground(
    store: &ContainerStore,
    runtime_root: &Path,
    id: &str,
    stdio: Stdio,
) -> Result<i32> {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| EngineError::Sys {
            call: "pipe2",
            source,
        })?;
    let monitor = match fork().map_err(|source| EngineError::Sys {
        call: "fork",
        source,
    })? {
        Forked::Child => {
            drop(read_end);
            let code = monitor_main(store, runtime_root, id, stdio, File::from(write_end));
            exit_child(code)
        }
        Forked::Parent(pid) => pid,
    };
    drop(write_end);
    drop(stdio);
    let mut outcome: Option<Report> = None;
    for line in BufReader::new(File::from(read_end)).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Report>(&line) {
            Ok(Report::Started(_)) => {}
            Ok(r) => {
                outcome = Some(r);
                break;
            }
            Err(_) => break,
        }
    }
    while let Err(nix::Error::EINTR) = waitpid(monitor, None) {}
    match outcome {
        Some(Report::Exited(code)) => Ok(code),
        Some(Report::Failed(chain)) => Err(EngineError::StartFailed {
            id: id.to_owned(),
            chain,
        }),
        _ => Err(EngineError::StartFailed {
            id: id.to_owned(),
            chain: vec!["the monitor process died without reporting an exit code".into()],
        }),
    }
}

fn report(out: &mut File, r: &Report) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = out.write_all(&line);
}

/// The monitor process. Returns its own exit status (0, or 1 on failure).
fn monitor_main(
    store: &ContainerStore,
    runtime_root: &Path,
    id: &str,
    stdio: Stdio,
    mut out: File,
) -> i32 {
    match monitor_steps(store, runtime_root, id, stdio, &mut out) {
        Ok(code) => {
            report(&mut out, &Report::Exited(code));
            0
        }
        Err(e) => {
            let chain = e.chain();
            let _ = store.update(id, |r| {
                r.state.error = Some(chain.join(": "));
                Ok(())
            });
            report(&mut out, &Report::Failed(chain));
            1
        }
    }
}

fn monitor_steps(
    store: &ContainerStore,
    runtime_root: &Path,
    id: &str,
    stdio: Stdio,
    out: &mut File,
) -> Result<i32> {
    let sys = |call| move |source| EngineError::Sys { call, source };
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))?;
    let stdin: OwnedFd = match stdio.stdin {
        Some(fd) => fd,
        None => File::open("/dev/null")
            .map_err(EngineError::io("cannot open", "/dev/null"))?
            .into(),
    };
    for (fd, target) in [(&stdin, 0), (&stdio.stdout, 1), (&stdio.stderr, 2)] {
        nix::unistd::dup2(fd.as_raw_fd(), target).map_err(sys("dup2"))?;
    }
    drop((stdin, stdio.stdout, stdio.stderr));
    close_inherited(out.as_raw_fd())?;

    let rt_err = |source| EngineError::Runtime {
        id: id.to_owned(),
        source: Box::new(source),
    };
    let rt = StateStore::open(runtime_root).map_err(rt_err)?;
    // A runtime container left by a monitor that was killed goes first.
    if let Ok(stale) = Container::load(&rt, id) {
        stale
            .delete(DeleteOptions { force: true })
            .map_err(rt_err)?;
    }
    let opts = RtCreate {
        id: id.to_owned(),
        bundle: store.dir(id),
        ..Default::default()
    };
    let mut c = Container::create(&rt, &opts).map_err(rt_err)?;
    if let Err(e) = c.start() {
        let _ = Container::load(&rt, id).and_then(|c| c.delete(DeleteOptions { force: true }));
        return Err(rt_err(e));
    }
    let pid = c.state.pid;
    store.update(id, |r| {
        r.state.status = Status::Running;
        r.state.pid = pid;
        r.state.exit_code = None;
        r.state.error = None;
        r.state.started_at = Some(vessel_runtime::state::now_rfc3339());
        r.state.finished_at = None;
        Ok(())
    })?;
    report(out, &Report::Started(pid));

    let code = wait_exit_code(Pid::from_raw(pid))?;
    let cleanup = Container::load(&rt, id).and_then(|c| c.delete(DeleteOptions { force: true }));
    store.update(id, |r| {
        r.state.status = Status::Exited;
        r.state.pid = 0;
        r.state.exit_code = Some(code);
        r.state.finished_at = Some(vessel_runtime::state::now_rfc3339());
        Ok(())
    })?;
    match cleanup {
        // `rm -f` from another process may have deleted it already.
        Ok(()) | Err(vessel_runtime::RuntimeError::NotFound(_)) => Ok(code),
        Err(e) => Err(rt_err(e)),
    }
}

/// Close every descriptor but stdio and `keep`. The monitor is a fork of
/// the caller and never execs, so close-on-exec does not help: without this
/// it would hold whatever the caller had open (another container's rootfs
/// directory, say, keeping its unmount busy) for the container's lifetime.
/// The caller's objects that own these descriptors are never dropped here:
/// the monitor leaves with `_exit`.
fn close_inherited(keep: RawFd) -> Result<()> {
    let dir = "/proc/self/fd";
    let fds: Vec<RawFd> = std::fs::read_dir(dir)
        .map_err(EngineError::io("cannot list", dir))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // EBADF for the directory handle of the listing, already closed.
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

/// Wait for `pid` (a child or, as subreaper, a grandchild), reaping any
/// other orphan on the way; the shell-style exit code.
fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(EngineError::Sys {
                    call: "waitpid",
                    source,
                })
            }
        }
    }
}
