//! The monitor: one small process per running container, like podman's
//! conmon. It outlives the command that started it.
//!
//! `start` forks the monitor (twice and in a new session when detached, so
//! that it belongs to no terminal and no caller), and waits for its reports
//! on a pipe, one JSON line each: `Started` (then a detached start returns),
//! `Failed` with the whole error chain, `Exited` with the code (then an
//! attached start returns). The monitor ([`process`]) holds the container's
//! stdio, writes its log, relays to an attached caller ([`relay`]), reaps it,
//! records its exit, applies the restart policy and `--rm`. While it runs it
//! holds `monitor.lock` ([`lock`]), which is how every other vessel process
//! knows it is alive.
//!
//! The monitor is a `fork` of the calling process, so the caller must be
//! single-threaded (as `vessel-runtime`'s create requires; the `vessel` CLI
//! starts no threads) or at least have no other thread holding a lock.

pub mod lock;
mod process;
mod relay;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use vessel_runtime::sys::fork::{exit_child, fork, Forked};
use vessel_runtime::{Container, StateStore};

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// The caller's streams for an attached run (`run` without `-d`, `start -a`).
#[derive(Debug)]
pub struct Stdio {
    /// Relayed to the container's stdin (`-i`); the container gets
    /// `/dev/null` when `None`.
    pub stdin: Option<OwnedFd>,
    /// Receives the container's stdout (and everything, with a terminal).
    pub stdout: OwnedFd,
    /// Receives the container's stderr.
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

    /// The calling process's own stdin (when `interactive`), stdout and stderr.
    pub fn inherit(interactive: bool) -> Result<Stdio> {
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(EngineError::io("cannot dup", "stdio"))
        };
        Ok(Stdio {
            stdin: if interactive {
                Some(dup(std::io::stdin().as_fd())?)
            } else {
                None
            },
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
        })
    }
}

/// How a start is attached.
#[derive(Debug)]
pub enum Attach {
    /// The caller waits for the exit, with the container's output relayed to
    /// these streams. With `sig_proxy`, SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to
    /// the caller are forwarded to the container (docker's `--sig-proxy`).
    Attached {
        /// The streams.
        stdio: Stdio,
        /// Forward the caller's signals.
        sig_proxy: bool,
    },
    /// The caller returns once the container runs.
    Detached,
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

fn report(out: &mut File, r: &Report) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = out.write_all(&line);
}

/// What a start returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Detached: the container runs with this init pid.
    Running(i32),
    /// Attached: the container's exit code (128+N for signal N).
    Exited(i32),
}

/// Start container `id` (its bundle is ready) under a new monitor.
pub fn start(engine: &Engine, id: &str, attach: Attach) -> Result<Outcome> {
    let sys = |call| move |source| EngineError::Sys { call, source };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let detached = matches!(attach, Attach::Detached);
    let (stdio, sig_proxy) = match attach {
        Attach::Attached { stdio, sig_proxy } => (Some(stdio), sig_proxy),
        Attach::Detached => (None, false),
    };
    let child = match fork().map_err(sys("fork"))? {
        Forked::Child => {
            drop(read_end);
            // A session of its own: no terminal's signals reach the monitor
            // or the container, and a detached one belongs to no caller.
            let _ = nix::unistd::setsid();
            if detached {
                match fork() {
                    Ok(Forked::Child) => {}
                    Ok(Forked::Parent(_)) => exit_child(0),
                    Err(_) => exit_child(1),
                }
            }
            let code = process::main(engine, id, stdio, File::from(write_end));
            exit_child(code)
        }
        Forked::Parent(pid) => pid,
    };
    drop(write_end);
    drop(stdio);
    if detached {
        while let Err(nix::Error::EINTR) = waitpid(child, None) {}
    }
    // An attached caller always passes on its terminal's resizes; the
    // other signals only with --sig-proxy.
    let proxy = if detached {
        None
    } else {
        Some(SignalProxy::new(child, sig_proxy)?)
    };
    let outcome = read_reports(engine, id, File::from(read_end), detached, proxy.as_ref());
    drop(proxy);
    if !detached {
        while let Err(nix::Error::EINTR) = waitpid(child, None) {}
    }
    outcome
}

fn read_reports(
    engine: &Engine,
    id: &str,
    reports: File,
    detached: bool,
    proxy: Option<&SignalProxy>,
) -> Result<Outcome> {
    let mut reader = BufReader::new(reports);
    let mut line = String::new();
    loop {
        if let Some(p) = proxy {
            p.wait_readable(reader.get_ref(), engine, id);
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<Report>(&line) {
            Ok(Report::Started(pid)) if detached => return Ok(Outcome::Running(pid)),
            Ok(Report::Started(_)) => {}
            Ok(Report::Exited(code)) => return Ok(Outcome::Exited(code)),
            Ok(Report::Failed(chain)) => {
                return Err(EngineError::StartFailed {
                    id: id.to_owned(),
                    chain,
                })
            }
            Err(_) => break,
        }
    }
    Err(EngineError::StartFailed {
        id: id.to_owned(),
        chain: vec!["the monitor process died without reporting".into()],
    })
}

/// The caller's terminal signals, blocked and read from a signalfd while it
/// waits, forwarded to the container's init; SIGWINCH (the caller's
/// terminal was resized) goes to the monitor, which holds the pty and
/// copies the new size to it.
#[derive(Debug)]
struct SignalProxy {
    fd: SignalFd,
    mask: SigSet,
    monitor: Pid,
}

impl SignalProxy {
    /// Forwarded to the container's init with --sig-proxy.
    const FORWARDED: [Signal; 4] = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ];

    fn new(monitor: Pid, forward: bool) -> Result<SignalProxy> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGWINCH);
        if forward {
            for s in Self::FORWARDED {
                mask.add(s);
            }
        }
        mask.thread_block().map_err(|source| EngineError::Sys {
            call: "sigprocmask",
            source,
        })?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|source| EngineError::Sys {
                call: "signalfd",
                source,
            })?;
        Ok(SignalProxy { fd, mask, monitor })
    }

    /// Wait until `reports` is readable, forwarding signals meanwhile.
    fn wait_readable(&self, reports: &File, engine: &Engine, id: &str) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            let mut fds = [
                PollFd::new(reports.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            ];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            let sig_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
            let report_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
            if sig_ready {
                while let Ok(Some(info)) = self.fd.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGWINCH) => {
                            let _ = nix::sys::signal::kill(self.monitor, Signal::SIGWINCH);
                        }
                        Ok(sig) => forward(engine, id, sig),
                        Err(_) => {}
                    }
                }
            }
            if report_ready {
                return;
            }
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        let _ = self.mask.thread_unblock();
    }
}

fn forward(engine: &Engine, id: &str, sig: Signal) {
    if let Ok(rt) = StateStore::open(&engine.runtime_root()) {
        if let Ok(c) = Container::load(&rt, id) {
            let _ = c.kill(sig, false);
        }
    }
}
