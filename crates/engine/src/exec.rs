//! `vessel exec`: another process in a running container, started through
//! the runtime library from the calling process (no monitor: docker does not
//! log exec output either). Its stdio is the caller's; with `-t` the caller
//! relays between its terminal and the process's new pty.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use vessel_runtime::exec::ExecOptions;
use vessel_runtime::{Container, StateStore};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::options::set_env;
use crate::spec::user::UserDb;
use crate::tty::{self, RawMode};

/// What `vessel exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `-e KEY=VALUE`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`: the caller's stdin goes to the process (else /dev/null).
    pub interactive: bool,
    /// `-d`: return once it started.
    pub detach: bool,
    /// `--privileged`: every capability.
    pub privileged: bool,
}

impl Engine {
    /// Run `req` in `container`; the process's exit code (0 when detached).
    ///
    /// The calling process becomes a child subreaper (the process is its
    /// grandchild) and must be single-threaded, as for `start`.
    pub fn exec(&self, container: &str, req: &ExecRequest) -> Result<i32> {
        if req.cmd.is_empty() {
            return Err(EngineError::InvalidOption {
                option: "exec",
                reason: "no command given".into(),
            });
        }
        let id = self.containers().resolve(container)?;
        let record = self.reconcile(self.containers().load(&id)?)?;
        if record.state.status != crate::record::Status::Running {
            return Err(EngineError::WrongState {
                id,
                status: record.state.status.to_string(),
                operation: "exec (it is not running)",
            });
        }
        let rt_err = |source| EngineError::Runtime {
            id: id.clone(),
            source: Box::new(source),
        };
        let rt = StateStore::open(&self.runtime_root()).map_err(rt_err)?;
        let c = Container::load(&rt, &id).map_err(rt_err)?;
        let spec = c.spec().map_err(rt_err)?;
        let process = self.exec_process(&id, &spec, req)?;

        nix::sys::prctl::set_child_subreaper(true).map_err(|source| EngineError::Sys {
            call: "prctl(PR_SET_CHILD_SUBREAPER)",
            source,
        })?;
        let console_path = self.console_socket_path(&format!("x{}", std::process::id()));
        let listener = if req.tty {
            if let Some(parent) = console_path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(EngineError::io("cannot create", parent))?;
            }
            let _ = std::fs::remove_file(&console_path);
            Some(
                UnixListener::bind(&console_path)
                    .map_err(EngineError::io("cannot listen on", &console_path))?,
            )
        } else {
            None
        };
        let opts = ExecOptions {
            process,
            detach: req.detach,
            pid_file: None,
            console_socket: listener.as_ref().map(|_| console_path.clone()),
            preserve_fds: 0,
        };
        // Without -i (or detached) the process reads /dev/null, as docker's;
        // it inherits our descriptors 0-2, so 0 is swapped for the call.
        let stdin_guard = if !req.interactive || req.detach {
            Some(StdinSwap::null()?)
        } else {
            None
        };
        let started = vessel_runtime::exec::exec(&c, &opts).map_err(rt_err);
        drop(stdin_guard);
        let master = match (&started, &listener) {
            (Ok(_), Some(l)) => {
                let (stream, _) = l
                    .accept()
                    .map_err(EngineError::io("cannot accept on", &console_path))?;
                Some(tty::recv_fd(&stream)?)
            }
            _ => None,
        };
        drop(listener);
        let _ = std::fs::remove_file(&console_path);
        let pid = started?;
        if req.detach {
            return Ok(0);
        }
        match master {
            Some(m) => relay_terminal(m, pid, req.interactive),
            None => wait_for(pid),
        }
    }

    /// The exec'd process: the container's own process settings (caps,
    /// NNP, rlimits, env) with the request's command, env, cwd and user.
    fn exec_process(&self, id: &str, spec: &Spec, req: &ExecRequest) -> Result<Process> {
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(req.cmd.clone()));
        p.set_terminal(Some(req.tty));
        // The pty starts with the caller's size: the process may look at it
        // before the relay gets the master.
        p.set_console_size(if req.tty {
            tty::window_size(&std::io::stdout()).map(|(rows, cols)| {
                oci_spec::runtime::BoxBuilder::default()
                    .height(u64::from(rows))
                    .width(u64::from(cols))
                    .build()
                    .expect("both fields are set")
            })
        } else {
            None
        });
        let mut env = p.env().clone().unwrap_or_default();
        for e in &req.env {
            if !e.contains('=') || e.starts_with('=') {
                return Err(EngineError::InvalidOption {
                    option: "-e",
                    reason: format!("{e:?} is not KEY=VALUE"),
                });
            }
            set_env(&mut env, e);
        }
        if let Some(w) = &req.workdir {
            if !w.starts_with('/') {
                return Err(EngineError::InvalidOption {
                    option: "-w",
                    reason: format!("{w:?} is not an absolute path"),
                });
            }
            p.set_cwd(w.into());
        }
        if let Some(u) = &req.user {
            let user = UserDb::read(&self.containers().rootfs(id))?.resolve(u)?;
            let mut spec_user = p.user().clone();
            spec_user.set_uid(user.uid);
            spec_user.set_gid(user.gid);
            spec_user.set_additional_gids(Some(user.additional_gids));
            p.set_user(spec_user);
            set_env(&mut env, &format!("HOME={}", user.home));
        }
        if req.privileged {
            let all = crate::spec::caps::host_bounding()
                .unwrap_or_else(|| crate::spec::caps::resolve(&["ALL".into()], &[], true));
            let set: Result<std::collections::HashSet<oci_spec::runtime::Capability>> = all
                .iter()
                .map(|c| {
                    c.parse().map_err(|_| EngineError::InvalidOption {
                        option: "--privileged",
                        reason: format!("unknown capability {c}"),
                    })
                })
                .collect();
            let set = set?;
            let mut caps = p.capabilities().clone().unwrap_or_default();
            caps.set_bounding(Some(set.clone()));
            caps.set_effective(Some(set.clone()));
            caps.set_permitted(Some(set));
            p.set_capabilities(Some(caps));
        }
        p.set_env(Some(env));
        Ok(p)
    }
}

/// Our fd 0 pointed at /dev/null until dropped.
struct StdinSwap {
    saved: OwnedFd,
}

impl StdinSwap {
    fn null() -> Result<StdinSwap> {
        let saved = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(EngineError::io("cannot dup", "stdin"))?;
        let null = std::fs::File::open("/dev/null")
            .map_err(EngineError::io("cannot open", "/dev/null"))?;
        nix::unistd::dup2(null.as_raw_fd(), 0).map_err(|source| EngineError::Sys {
            call: "dup2",
            source,
        })?;
        Ok(StdinSwap { saved })
    }
}

impl Drop for StdinSwap {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2(self.saved.as_raw_fd(), 0);
    }
}

/// Wait for `pid` (a child or, as subreaper, a grandchild); its exit code.
fn wait_for(pid: Pid) -> Result<i32> {
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

/// `exec -t`: our terminal (raw) <-> the process's pty until it exits;
/// the process's exit code. `pid` must be our child (or we its subreaper).
pub fn relay_terminal(master: OwnedFd, pid: Pid, interactive: bool) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    if let Some(size) = tty::window_size(&stdout) {
        tty::set_window_size(&master, size);
    }
    let _raw = if interactive {
        RawMode::enter(&stdin)
    } else {
        None
    };
    // A resized terminal: its new size goes to the pty (read from a
    // signalfd, so no handler is installed by a library).
    let winch = WinchWatch::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut input_open = interactive;
    let mut code = None;
    loop {
        if code.is_none() {
            code = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => Some(c),
                Ok(WaitStatus::Signaled(_, s, _)) => Some(128 + s as i32),
                _ => None,
            };
        }
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = &winch {
            fds.push(PollFd::new(w.fd.as_fd(), PollFlags::POLLIN));
        }
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // The process's exit is noticed by polling (no SIGCHLD handler in a
        // library); the pty's end (EIO) normally comes first.
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) if code.is_some() => break,
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(source) => {
                return Err(EngineError::Sys {
                    call: "poll",
                    source,
                })
            }
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let out_ready = ready(0);
        let winch_ready = winch.is_some() && ready(1);
        let in_ready = input_open && ready(fds.len() - 1);
        drop(fds);
        if winch_ready {
            if let Some(w) = &winch {
                while let Ok(Some(_)) = w.fd.read_signal() {}
            }
            if let Some(size) = tty::window_size(&stdout) {
                tty::set_window_size(&master, size);
            }
        }
        if out_ready {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => break,
                Ok(n) => {
                    let _ = write_all(stdout.as_fd(), &buf[..n]);
                }
                Err(_) => {}
            }
        }
        if in_ready {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => input_open = false,
                Ok(n) => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
            }
        }
    }
    drop(master);
    match code {
        Some(c) => Ok(c),
        None => wait_for(pid),
    }
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// SIGWINCH blocked and read from a signalfd for as long as a terminal is
/// relayed; unblocked again on drop.
struct WinchWatch {
    fd: nix::sys::signalfd::SignalFd,
    mask: nix::sys::signal::SigSet,
}

impl WinchWatch {
    /// `None` if the signalfd cannot be made (then sizes are not followed).
    fn new() -> Option<WinchWatch> {
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut mask = nix::sys::signal::SigSet::empty();
        mask.add(nix::sys::signal::Signal::SIGWINCH);
        mask.thread_block().ok()?;
        match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Some(WinchWatch { fd, mask }),
            Err(_) => {
                let _ = mask.thread_unblock();
                None
            }
        }
    }
}

impl Drop for WinchWatch {
    fn drop(&mut self) {
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = self.mask.thread_unblock();
    }
}
