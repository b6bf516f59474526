//! Terminals: receiving a pty master over a console socket, window sizes,
//! and raw mode for the caller's terminal while it is attached.
//!
//! The only module of the engine with `unsafe`: two ioctls and adopting a
//! descriptor the kernel installed.
#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{EngineError, Result};

/// Receive the pty master a runtime sends over a console socket.
pub fn recv_fd(stream: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|source| EngineError::Sys {
        call: "recvmsg(console socket)",
        source,
    })?;
    let cmsgs = msg.cmsgs().map_err(|source| EngineError::Sys {
        call: "recvmsg(console socket)",
        source,
    })?;
    for c in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our
                // table for this message; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(EngineError::Sys {
        call: "recvmsg(console socket): no descriptor received",
        source: nix::Error::EPROTO,
    })
}

/// The window size of terminal `fd` (rows, columns), if it is one.
pub fn window_size(fd: &impl AsFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (ret == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Set the window size of terminal `fd`.
pub fn set_window_size(fd: &impl AsFd, (rows, cols): (u16, u16)) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which outlives the call.
    unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// The caller's terminal in raw mode until dropped (for `-it`: keys go to
/// the container's terminal unprocessed, ^C included).
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Put `fd` in raw mode if it is a terminal; `None` if it is not.
    pub fn enter(fd: &impl AsFd) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_fd().try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
