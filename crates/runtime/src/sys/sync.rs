//! The message channel between the runtime and a container's init.
//!
//! A `SOCK_SEQPACKET` socket pair keeps message boundaries, so each message is
//! one small JSON datagram; end of file means the peer is gone.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// What the two sides tell each other during `create` and `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMsg {
    /// Child: I created a user namespace; write uid/gid maps for `pid`.
    MapRequest { pid: i32 },
    /// Parent: the maps are written.
    MapDone,
    /// Parent (`exec`): the process is in the container's cgroup, carry on.
    Go,
    /// Parent (`create`): the init is in the container's cgroup and has its
    /// oom_score_adj; it may now create its cgroup namespace.
    Joined,
    /// Child: the process that will exec the container program is `pid` (host pid namespace).
    Pid { pid: i32 },
    /// Init: mounts are done; run prestart and createRuntime hooks now.
    RunCreateHooks,
    /// Parent: hooks ran.
    HooksDone,
    /// Init: fully set up, now waiting for `start`.
    Ready,
    /// Either side: setup failed; the error chain, outermost first.
    Error { chain: Vec<String> },
}

/// One end of the channel.
#[derive(Debug)]
pub struct SyncChannel {
    fd: OwnedFd,
}

/// Failures of the channel itself.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The other side closed the channel (it exited).
    #[error("the other side of the setup channel exited")]
    Closed,
    /// A system call on the socket failed.
    #[error("setup channel I/O")]
    Io(#[source] nix::Error),
    /// The peer sent something that is not a message.
    #[error("malformed message on the setup channel")]
    Malformed(#[source] serde_json::Error),
}

impl SyncChannel {
    /// Create a connected pair (both ends close-on-exec).
    pub fn pair() -> nix::Result<(SyncChannel, SyncChannel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((SyncChannel { fd: a }, SyncChannel { fd: b }))
    }

    /// Send one message.
    pub fn send(&self, msg: &SyncMsg) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg).expect("messages serialize");
        loop {
            // MSG_NOSIGNAL: a peer that exited must give EPIPE, not kill us with SIGPIPE.
            match nix::sys::socket::send(
                self.fd.as_raw_fd(),
                &data,
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) => return Err(SyncError::Closed),
                Err(e) => return Err(SyncError::Io(e)),
            }
        }
    }

    /// Receive one message, blocking.
    pub fn recv(&self) -> Result<SyncMsg, SyncError> {
        self.recv_with(nix::sys::socket::MsgFlags::empty())?
            .ok_or(SyncError::Io(nix::Error::EAGAIN))
    }

    /// Receive one message if one is queued; `None` if none is.
    pub fn try_recv(&self) -> Result<Option<SyncMsg>, SyncError> {
        self.recv_with(nix::sys::socket::MsgFlags::MSG_DONTWAIT)
    }

    fn recv_with(&self, flags: nix::sys::socket::MsgFlags) -> Result<Option<SyncMsg>, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, flags) {
                Ok(0) => return Err(SyncError::Closed),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map(Some)
                        .map_err(SyncError::Malformed)
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN)
                    if flags.contains(nix::sys::socket::MsgFlags::MSG_DONTWAIT) =>
                {
                    return Ok(None)
                }
                Err(nix::Error::ECONNRESET) => return Err(SyncError::Closed),
                Err(e) => return Err(SyncError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_close() {
        let (a, b) = SyncChannel::pair().unwrap();
        a.send(&SyncMsg::Pid { pid: 42 }).unwrap();
        a.send(&SyncMsg::Error {
            chain: vec!["x".into(), "y".into()],
        })
        .unwrap();
        assert_eq!(b.recv().unwrap(), SyncMsg::Pid { pid: 42 });
        assert_eq!(
            b.recv().unwrap(),
            SyncMsg::Error {
                chain: vec!["x".into(), "y".into()]
            }
        );
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Closed)));
    }

    #[test]
    fn try_recv_returns_what_is_queued_then_none() {
        let (a, b) = SyncChannel::pair().unwrap();
        assert_eq!(b.try_recv().unwrap(), None);
        a.send(&SyncMsg::Joined).unwrap();
        assert_eq!(b.try_recv().unwrap(), Some(SyncMsg::Joined));
        assert_eq!(b.try_recv().unwrap(), None);
        drop(a);
        assert!(matches!(b.try_recv(), Err(SyncError::Closed)));
    }
}
