//! The monitor process itself: run the container, relay and log its output,
//! reap it, record its exit, restart it when its policy says so, remove it
//! for `--rm`.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use vessel_runtime::{Container, CreateOptions as RtCreate, DeleteOptions, StateStore};

use super::lock::MonitorLock;
use super::relay::{self, Streams};
use super::{report, Report, Stdio};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::logs::LogWriter;
use crate::record::{RestartPolicy, Status};

/// The monitor's entry point (in the forked process); its exit status.
pub(super) fn main(engine: &Engine, id: &str, attach: Option<Stdio>, mut out: File) -> i32 {
    let mut started = false;
    match run(engine, id, attach, &mut out, &mut started) {
        Ok(code) => {
            report(&mut out, &Report::Exited(code));
            0
        }
        Err(e) => {
            let chain = e.chain();
            let _ = engine.containers().update(id, |r| {
                r.state.error = Some(chain.join(": "));
                if r.state.status != Status::Exited {
                    r.state.status = if started {
                        Status::Exited
                    } else {
                        Status::Created
                    };
                }
                r.state.monitor_pid = 0;
                Ok(())
            });
            report(&mut out, &Report::Failed(chain));
            1
        }
    }
}

fn sys(call: &'static str) -> impl Fn(nix::Error) -> EngineError {
    move |source| EngineError::Sys { call, source }
}

fn run(
    engine: &Engine,
    id: &str,
    attach: Option<Stdio>,
    out: &mut File,
    started: &mut bool,
) -> Result<i32> {
    let store = engine.containers();
    let dir = store.dir(id);
    let Some(lock) = MonitorLock::try_acquire(&dir)? else {
        return Err(EngineError::WrongState {
            id: id.to_owned(),
            status: "running".into(),
            operation: "start (another monitor runs it)",
        });
    };
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))?;
    let record = store.load(id)?;
    let tty = record.config.tty;
    let policy = record.config.restart;
    let mut log = LogWriter::open(&dir)?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(EngineError::io("cannot open", "/dev/null"))?;
    let (mut caller_in, caller_out, caller_err) = match attach {
        Some(s) => (s.stdin, Some(s.stdout), Some(s.stderr)),
        None => (None, None, None),
    };
    // The monitor never execs: close what it inherited from the caller
    // (another container's rootfs directory, say, would stay busy).
    let keep: Vec<RawFd> = [
        Some(out.as_raw_fd()),
        Some(lock.as_raw_fd()),
        Some(log.file().as_raw_fd()),
        Some(null.as_raw_fd()),
        caller_in.as_ref().map(AsRawFd::as_raw_fd),
        caller_out.as_ref().map(AsRawFd::as_raw_fd),
        caller_err.as_ref().map(AsRawFd::as_raw_fd),
    ]
    .into_iter()
    .flatten()
    .collect();
    close_inherited(&keep)?;
    let rt_err = |source| EngineError::Runtime {
        id: id.to_owned(),
        source: Box::new(source),
    };
    let rt = StateStore::open(&engine.runtime_root()).map_err(rt_err)?;
    let console_path = engine.console_socket_path(id);

    loop {
        // A runtime container left by a monitor that was killed goes first.
        if let Ok(stale) = Container::load(&rt, id) {
            stale
                .delete(DeleteOptions { force: true })
                .map_err(rt_err)?;
        }
        let stdin_pipe = match caller_in.as_ref() {
            Some(_) if !tty => Some(pipe()?),
            _ => None,
        };
        let (out_r, out_w) = if tty { (None, None) } else { split(pipe()?) };
        let (err_r, err_w) = if tty { (None, None) } else { split(pipe()?) };
        let null_fd = || null.try_clone().map(OwnedFd::from);
        let io = |e| EngineError::io("cannot dup", "/dev/null")(e);
        // The container inherits the monitor's 0, 1 and 2.
        let fd0: OwnedFd = match &stdin_pipe {
            Some((r, _)) => r.try_clone().map_err(io)?,
            None => null_fd().map_err(io)?,
        };
        let fd1 = out_w.unwrap_or(null_fd().map_err(io)?);
        let fd2 = err_w.unwrap_or(null_fd().map_err(io)?);
        for (fd, target) in [(&fd0, 0), (&fd1, 1), (&fd2, 2)] {
            nix::unistd::dup2(fd.as_raw_fd(), target).map_err(sys("dup2"))?;
        }
        drop((fd0, fd1, fd2));
        let listener = if tty {
            Some(console_listener(&console_path)?)
        } else {
            None
        };

        let network = crate::network::attach(engine, id)?;
        let opts = RtCreate {
            id: id.to_owned(),
            bundle: dir.clone(),
            console_socket: listener.as_ref().map(|_| console_path.clone()),
            ..Default::default()
        };
        let created = Container::create(&rt, &opts).map_err(rt_err);
        let master = match (&created, &listener) {
            (Ok(_), Some(l)) => Some(relay::receive_pty(l, &console_path)?),
            _ => None,
        };
        drop(listener);
        let _ = std::fs::remove_file(&console_path);
        let mut c = created.inspect_err(|_| {
            let _ = crate::network::release(engine, id);
        })?;
        if let Some(m) = &master {
            relay::copy_window_size(caller_out.as_ref(), m);
        }
        if let Err(e) = c.start() {
            let _ = Container::load(&rt, id).and_then(|c| c.delete(DeleteOptions { force: true }));
            let _ = crate::network::release(engine, id);
            return Err(rt_err(e));
        }
        // The monitor's own 0/1/2 must not keep the container's pipes open.
        for target in 0..=2 {
            nix::unistd::dup2(null.as_raw_fd(), target).map_err(sys("dup2"))?;
        }
        let pid = c.state.pid;
        let monitor_pid = std::process::id() as i32;
        store.update(id, |r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.monitor_pid = monitor_pid;
            r.state.exit_code = None;
            r.state.error = None;
            r.state.oom_killed = false;
            r.state.started_at = Some(vessel_runtime::state::now_rfc3339());
            r.state.finished_at = None;
            Ok(())
        })?;
        if !*started {
            *started = true;
            report(out, &Report::Started(pid));
        }

        let signals = RelaySignals::block()?;
        let (stdin_r, stdin_w) = split_opt(stdin_pipe);
        drop(stdin_r);
        let streams = Streams {
            stdout: out_r,
            stderr: err_r,
            pty: master,
            caller_in: caller_in.take(),
            container_in: stdin_w,
            caller_out: caller_out.as_ref(),
            caller_err: caller_err.as_ref(),
        };
        let code = relay::run(streams, &signals.fd, pid, &mut log)?;
        drop(signals);

        let oom = c.cgroup().ok().and_then(|cg| {
            use vessel_cgroups::CgroupManager;
            cg.oom_kill_count().ok()
        });
        let cleanup =
            Container::load(&rt, id).and_then(|c| c.delete(DeleteOptions { force: true }));
        // Ports, addresses and rules are released when the container stops.
        drop(network);
        crate::network::release(engine, id)?;
        let record = store.update(id, |r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = Some(code);
            r.state.oom_killed = oom.is_some_and(|n| n > 0);
            r.state.finished_at = Some(vessel_runtime::state::now_rfc3339());
            Ok(())
        })?;
        match cleanup {
            // `rm -f` from another process may have deleted it already.
            Ok(()) | Err(vessel_runtime::RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(rt_err(e)),
        }
        let again = !record.state.stopped_by_user
            && match policy {
                RestartPolicy::No => false,
                RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
                RestartPolicy::OnFailure { max_retries } => {
                    code != 0 && (max_retries == 0 || record.state.restart_count < max_retries)
                }
            };
        if !again {
            store.update(id, |r| {
                r.state.monitor_pid = 0;
                Ok(())
            })?;
            if record.config.auto_remove {
                engine.remove_exited(id)?;
            }
            return Ok(code);
        }
        // docker's back-off: 100 ms, doubling, at most a minute.
        let count = record.state.restart_count;
        let delay = Duration::from_millis(100u64 << count.min(9)).min(Duration::from_secs(60));
        store.update(id, |r| {
            r.state.status = Status::Restarting;
            r.state.restart_count += 1;
            Ok(())
        })?;
        std::thread::sleep(delay);
        if store.load(id)?.state.stopped_by_user {
            store.update(id, |r| {
                r.state.status = Status::Exited;
                r.state.monitor_pid = 0;
                Ok(())
            })?;
            return Ok(code);
        }
        // A restarted container has no caller to read from.
        caller_in = None;
    }
}

/// SIGCHLD, SIGPIPE and SIGWINCH (sent by an attached caller whose
/// terminal was resized), blocked and read from a signalfd while the relay
/// runs; unblocked (pending ones consumed) before the next container is
/// created, because a signal mask is inherited across fork and exec.
struct RelaySignals {
    fd: SignalFd,
    mask: SigSet,
}

impl RelaySignals {
    fn block() -> Result<RelaySignals> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGPIPE);
        mask.add(Signal::SIGWINCH);
        mask.thread_block().map_err(sys("sigprocmask"))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(sys("signalfd"))?;
        Ok(RelaySignals { fd, mask })
    }
}

impl Drop for RelaySignals {
    fn drop(&mut self) {
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = self.mask.thread_unblock();
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"))
}

fn split(p: (OwnedFd, OwnedFd)) -> (Option<OwnedFd>, Option<OwnedFd>) {
    (Some(p.0), Some(p.1))
}

fn split_opt(p: Option<(OwnedFd, OwnedFd)>) -> (Option<OwnedFd>, Option<OwnedFd>) {
    p.map_or((None, None), split)
}

fn console_listener(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(EngineError::io("cannot create", parent))?;
    }
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(EngineError::io("cannot listen on", PathBuf::from(path)))
}

/// Close every descriptor but stdio and `keep`. The monitor is a fork of
/// the caller and never execs, so close-on-exec does not help. The caller's
/// objects that own these descriptors are never dropped here: the monitor
/// leaves with `_exit`.
fn close_inherited(keep: &[RawFd]) -> Result<()> {
    let dir = "/proc/self/fd";
    let fds: Vec<RawFd> = std::fs::read_dir(dir)
        .map_err(EngineError::io("cannot list", dir))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // EBADF for the directory handle of the listing, already closed.
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}
