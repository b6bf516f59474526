//! Persistent network namespaces: a namespace bind-mounted on a file (as
//! `ip netns add` does), so that it outlives the processes in it, can be
//! configured before the container starts, and is joined by path from the
//! container's OCI spec.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetError, Result};
use crate::netlink::Netlink;

const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Whether `path` is a mounted namespace file.
pub fn exists(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Create a new network namespace and bind-mount it on `path` (created).
/// A namespace already mounted there is kept: creating is idempotent, so
/// a restart after a crash converges.
pub fn create(path: &Path) -> Result<()> {
    if exists(path) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(NetError::io("create", dir))?;
    share_mounts_of(dir)?;
    File::create(path).map_err(NetError::io("create", path))?;
    let original = File::open(THREAD_NETNS).map_err(NetError::io("open", THREAD_NETNS))?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(NetError::sys("unshare(CLONE_NEWNET)"))?;
    let mounted = mount(
        Some(THREAD_NETNS),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(NetError::sys("mount --bind of a network namespace"));
    let back = setns(original.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(NetError::sys("setns(CLONE_NEWNET) back to the host's"));
    mounted.and(back).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Make the directory of the namespace files a shared mount (as `ip netns`
/// does with /run/netns): an unmount then reaches the copies that other
/// mount namespaces made, so a removed namespace is really released.
fn share_mounts_of(dir: &Path) -> Result<()> {
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    let is_mountpoint = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(NetError::io("read", "/proc/self/mountinfo"))?
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(m) == dir);
    if !is_mountpoint {
        mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(NetError::sys("mount --bind of the netns directory"))?;
    }
    shared(dir).map_err(NetError::sys("mount --make-shared of the netns directory"))
}

/// Unmount and delete the namespace file at `path`. The namespace itself
/// ends when no process is left in it, and with it its links (the
/// container's end of a veth pair, and so the pair). Missing is not an error.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(NetError::sys("umount of a network namespace")(e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("remove", path)(e)),
    }
}

/// An open handle on the namespace at `path`.
pub fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(NetError::io("open the network namespace", path))
}

/// A netlink socket inside the namespace at `path`: the calling thread
/// enters it, opens the socket and comes back (the socket stays there).
pub fn netlink_in(path: &Path) -> Result<Netlink> {
    let target = open(path)?;
    let original = File::open(THREAD_NETNS).map_err(NetError::io("open", THREAD_NETNS))?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(NetError::sys("setns(CLONE_NEWNET) into a container's"))?;
    let socket = Netlink::open();
    setns(original.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(NetError::sys("setns(CLONE_NEWNET) back to the host's"))?;
    socket
}
