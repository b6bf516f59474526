//! The monitor's relay loop: container output to the log (and to an
//! attached caller), the caller's input to the container, and the reaping of
//! the container's init, all from one `poll`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{EngineError, Result};
use crate::logs::{LogWriter, Stream};
use crate::tty;

/// The descriptors of one run.
pub(super) struct Streams<'a> {
    /// The container's stdout pipe (read end), without a terminal.
    pub stdout: Option<OwnedFd>,
    /// The container's stderr pipe (read end), without a terminal.
    pub stderr: Option<OwnedFd>,
    /// The pty master, with a terminal.
    pub pty: Option<OwnedFd>,
    /// The caller's stdin, attached with `-i`.
    pub caller_in: Option<OwnedFd>,
    /// The container's stdin pipe (write end), without a terminal.
    pub container_in: Option<OwnedFd>,
    /// The caller's stdout, attached.
    pub caller_out: Option<&'a OwnedFd>,
    /// The caller's stderr, attached.
    pub caller_err: Option<&'a OwnedFd>,
}

/// How long output may still arrive after the init was reaped (its pid
/// namespace is being torn down; the pipes close within milliseconds).
const DRAIN_MS: u16 = 500;

/// Relay until the init `pid` has been reaped and its output has ended;
/// its exit code (128+N for signal N).
pub(super) fn run(
    mut s: Streams<'_>,
    signals: &SignalFd,
    pid: i32,
    log: &mut LogWriter,
) -> Result<i32> {
    let init = Pid::from_raw(pid);
    let mut code = reap(init);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let outputs_open = s.stdout.is_some() || s.stderr.is_some() || s.pty.is_some();
        if code.is_some() && !outputs_open {
            break;
        }
        // Slots: 0 stdout, 1 stderr, 2 pty, 3 caller stdin, 4 signals.
        let slots: [Option<std::os::fd::BorrowedFd<'_>>; 5] = [
            s.stdout.as_ref().map(AsFd::as_fd),
            s.stderr.as_ref().map(AsFd::as_fd),
            s.pty.as_ref().map(AsFd::as_fd),
            s.caller_in.as_ref().map(AsFd::as_fd),
            Some(signals.as_fd()),
        ];
        let mut fds = Vec::new();
        let mut which = Vec::new();
        for (i, fd) in slots.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(PollFd::new(*fd, PollFlags::POLLIN));
                which.push(i);
            }
        }
        let timeout = if code.is_some() {
            PollTimeout::from(DRAIN_MS)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break, // drained long enough after the exit
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(EngineError::Sys {
                    call: "poll",
                    source,
                })
            }
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        drop(fds);
        for i in ready {
            match i {
                0 => {
                    if !pump(&mut s.stdout, &mut buf, Stream::Stdout, log, s.caller_out) {
                        log.flush(Stream::Stdout);
                    }
                }
                1 => {
                    if !pump(&mut s.stderr, &mut buf, Stream::Stderr, log, s.caller_err) {
                        log.flush(Stream::Stderr);
                    }
                }
                2 => {
                    if !pump(&mut s.pty, &mut buf, Stream::Stdout, log, s.caller_out) {
                        log.flush(Stream::Stdout);
                    }
                }
                3 => forward_input(&mut s, &mut buf),
                _ => {
                    while let Ok(Some(info)) = signals.read_signal() {
                        if info.ssi_signo == nix::libc::SIGWINCH as u32 {
                            if let Some(pty) = &s.pty {
                                copy_window_size(s.caller_out, pty);
                            }
                        }
                    }
                    if code.is_none() {
                        code = reap(init);
                    } else {
                        reap(init);
                    }
                }
            }
        }
    }
    log.flush(Stream::Stdout);
    log.flush(Stream::Stderr);
    // Orphans of the container (an exec'd process's children) reparented
    // to the monitor are reaped on the way out.
    reap(init);
    Ok(code.unwrap_or(255))
}

/// Reap every exited child; the exit code of `init` if it was among them.
fn reap(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == init => code = Some(c),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => code = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// Move what `src` has to the log and `copy_to`; false (and `src` closed)
/// at its end. A pty master reports the end as EIO.
fn pump(
    src: &mut Option<OwnedFd>,
    buf: &mut [u8],
    stream: Stream,
    log: &mut LogWriter,
    copy_to: Option<&OwnedFd>,
) -> bool {
    let Some(fd) = src.as_ref() else {
        return false;
    };
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(0) | Err(nix::Error::EIO) | Err(nix::Error::EBADF) => {
            *src = None;
            false
        }
        Ok(n) => {
            log.write(stream, &buf[..n]);
            if let Some(out) = copy_to {
                // A caller that went away (EPIPE) only stops the copy; the
                // container and its log go on.
                let _ = write_all(out, &buf[..n]);
            }
            true
        }
        Err(_) => true, // EINTR/EAGAIN: poll again
    }
}

fn forward_input(s: &mut Streams<'_>, buf: &mut [u8]) {
    let Some(input) = s.caller_in.as_ref() else {
        return;
    };
    match nix::unistd::read(input.as_raw_fd(), buf) {
        Ok(0) | Err(nix::Error::EIO) | Err(nix::Error::EBADF) => {
            // The caller's stdin ended: so does the container's (EOF on
            // its pipe; a terminal gets nothing, as with docker).
            s.caller_in = None;
            s.container_in = None;
        }
        Ok(n) => {
            let target = s.container_in.as_ref().or(s.pty.as_ref());
            if let Some(t) = target {
                if write_all(t, &buf[..n]).is_err() {
                    s.container_in = None;
                }
            }
        }
        Err(_) => {}
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Accept the runtime's connection on the console socket and take the pty
/// master it sends.
pub(super) fn receive_pty(listener: &UnixListener, path: &Path) -> Result<OwnedFd> {
    let (stream, _) = listener
        .accept()
        .map_err(EngineError::io("cannot accept on", path))?;
    tty::recv_fd(&stream)
}

/// Give the container's terminal the caller's window size.
pub(super) fn copy_window_size(caller_out: Option<&OwnedFd>, master: &OwnedFd) {
    if let Some(size) = caller_out.and_then(tty::window_size) {
        tty::set_window_size(master, size);
    }
}
