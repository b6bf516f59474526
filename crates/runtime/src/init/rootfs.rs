//! Building the container's root filesystem inside its mount namespace.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};

use super::cgroup_gate::CgroupGate;
use super::devices;
use super::mounts::{bind_remount, mount_into, parse_options, propagation_flag};
use crate::error::{Result, RuntimeError};
use crate::sys::resolve::{fd_path, mkdir_all_in, open_in_root};

fn sys(call: impl Into<String>) -> impl FnOnce(nix::Error) -> RuntimeError {
    let call = call.into();
    move |e| RuntimeError::sys(call, e)
}

/// Everything `prepare` needs to know.
#[derive(Debug)]
pub struct RootfsPlan<'a> {
    /// The config.
    pub spec: &'a Spec,
    /// Host path of the rootfs.
    pub rootfs: &'a Path,
    /// The bundle directory (relative bind sources).
    pub bundle: &'a Path,
    /// Whether the container has a user namespace of its own (no mknod then).
    pub in_userns: bool,
    /// Whether the container has a cgroup namespace of its own.
    pub new_cgroupns: bool,
    /// The container's cgroup path, for bind-mounting it without a cgroup namespace.
    pub cgroup_path: &'a str,
    /// Passed before the first cgroup mount or device node.
    pub cgroup_gate: &'a CgroupGate<'a>,
}

/// Set up mounts and /dev under the rootfs; returns the open rootfs.
pub fn prepare(plan: &RootfsPlan<'_>) -> Result<OwnedFd> {
    // Keep our mounts from propagating to the host (and the host's to us,
    // unless rootfsPropagation asks for shared).
    let linux = plan.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    let initial = if prop.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    } else {
        prop
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        initial | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make / private"))?;
    // pivot_root needs the new root to be a mount point whose parent is not shared.
    make_parent_private(plan.rootfs)?;
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("bind rootfs {}", plan.rootfs.display())))?;
    let root: OwnedFd = std::fs::File::open(plan.rootfs)
        .map_err(|e| RuntimeError::io("cannot open rootfs", plan.rootfs, e))?
        .into();

    let mounts: &[Mount] = plan.spec.mounts().as_deref().unwrap_or(&[]);
    for m in mounts {
        if m.typ().as_deref() == Some("cgroup") || m.typ().as_deref() == Some("cgroup2") {
            plan.cgroup_gate.pass()?;
            mount_cgroup(root.as_fd(), m, plan)?;
        } else {
            mount_into(root.as_fd(), plan.bundle, m)?;
        }
    }

    let has_devpts = mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts"));
    let mut nodes = devices::default_devices();
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let d = devices::from_spec(d);
        nodes.retain(|n| n.path != d.path);
        nodes.push(d);
    }
    // Device nodes are made inside the container's cgroup, whose device
    // rules govern mknod, as before the cgroup move overlapped with setup.
    plan.cgroup_gate.pass()?;
    for dev in &nodes {
        devices::create(root.as_fd(), dev, plan.in_userns)?;
    }
    devices::create_symlinks(root.as_fd(), has_devpts)?;
    Ok(root)
}

fn make_parent_private(rootfs: &Path) -> Result<()> {
    // Find the mount the rootfs lives on and make it private; walking up the
    // path until a mount call succeeds is how runc finds it too.
    let mut p = rootfs.parent();
    while let Some(dir) = p {
        if mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .is_ok()
        {
            return Ok(());
        }
        p = dir.parent();
    }
    Ok(())
}

/// Mount the cgroup filesystem(s) for a `cgroup` mount entry.
fn mount_cgroup(root: std::os::fd::BorrowedFd<'_>, m: &Mount, plan: &RootfsPlan<'_>) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let dest = m.destination();
    let hierarchies = host_cgroup_hierarchies();
    let is_v2 = hierarchies.iter().all(|h| h.fstype == "cgroup2") && !hierarchies.is_empty();
    if is_v2 {
        let fd = mkdir_all_in(root, dest, 0o755)
            .map_err(|e| RuntimeError::io("cannot create", dest, e))?;
        let target = fd_path(fd.as_fd());
        if plan.new_cgroupns {
            mount(
                Some("cgroup2"),
                target.as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(sys(format!("mount cgroup2 on {}", dest.display())))?;
        } else {
            let src = format!(
                "{}/{}",
                hierarchies[0].mountpoint,
                plan.cgroup_path.trim_start_matches('/')
            );
            mount(
                Some(src.as_str()),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys(format!("bind {src} on {}", dest.display())))?;
            bind_remount(
                &fd_path(
                    open_in_root(root, dest, libc::O_PATH)
                        .map_err(|e| RuntimeError::io("reopen", dest, e))?
                        .as_fd(),
                ),
                flags,
            )
            .map_err(sys("remount cgroup"))?;
        }
        return Ok(());
    }
    // cgroup v1: a tmpfs with one directory per hierarchy.
    let fd =
        mkdir_all_in(root, dest, 0o755).map_err(|e| RuntimeError::io("cannot create", dest, e))?;
    mount(
        Some("tmpfs"),
        fd_path(fd.as_fd()).as_str(),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(sys(format!("mount tmpfs on {}", dest.display())))?;
    for h in &hierarchies {
        let Some(name) = Path::new(&h.mountpoint).file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let sfd = mkdir_all_in(root, &sub, 0o755)
            .map_err(|e| RuntimeError::io("cannot create", &sub, e))?;
        let target = fd_path(sfd.as_fd());
        let result = if plan.new_cgroupns {
            let (fstype, data) = if h.fstype == "cgroup2" {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.options.as_str()))
            };
            mount(Some(fstype), target.as_str(), Some(fstype), flags, data)
        } else {
            let src = format!(
                "{}/{}",
                h.mountpoint,
                plan.cgroup_path.trim_start_matches('/')
            );
            let src = if Path::new(&src).exists() {
                src
            } else {
                h.mountpoint.clone()
            };
            mount(
                Some(src.as_str()),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .and_then(|()| {
                let top = open_in_root(root, &sub, libc::O_PATH).map_err(|_| nix::Error::ENOENT)?;
                bind_remount(&fd_path(top.as_fd()), flags)
            })
        };
        result.map_err(sys(format!(
            "mount cgroup {} on {}",
            h.options,
            sub.display()
        )))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = open_in_root(root, dest, libc::O_PATH)
            .map_err(|e| RuntimeError::io("reopen", dest, e))?;
        bind_remount(&fd_path(top.as_fd()), flags)
            .map_err(sys(format!("remount {} read-only", dest.display())))?;
    }
    Ok(())
}

/// A cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Where it is mounted.
    pub mountpoint: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// The controllers (super options such as `cpu,cpuacct` or `name=systemd`).
    pub options: String,
}

/// The cgroup hierarchies of the host, from /proc/self/mountinfo.
pub fn host_cgroup_hierarchies() -> Vec<CgroupHierarchy> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| parse_cgroup_mountinfo(&s))
        .unwrap_or_default()
}

/// Parse the cgroup lines of a mountinfo file.
pub fn parse_cgroup_mountinfo(data: &str) -> Vec<CgroupHierarchy> {
    let mut out = Vec::new();
    for line in data.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let _source = r.next();
        let super_opts = r.next().unwrap_or("");
        let Some(mountpoint) = left.split_whitespace().nth(4) else {
            continue;
        };
        let options = super_opts
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro"
                        | "nsdelegate"
                        | "memory_recursiveprot"
                        | "xattr"
                        | "clone_children"
                        | "noprefix"
                )
            })
            .filter(|o| !o.starts_with("release_agent="))
            .collect::<Vec<_>>()
            .join(",");
        if out
            .iter()
            .any(|h: &CgroupHierarchy| h.mountpoint == mountpoint)
        {
            continue;
        }
        out.push(CgroupHierarchy {
            mountpoint: mountpoint.to_owned(),
            fstype: fstype.to_owned(),
            options,
        });
    }
    out
}

/// Make `rootfs` the new `/`, either by pivot_root (default) or by moving it
/// over `/` and chroot-ing (`--no-pivot`, for ramdisk roots where pivot_root fails).
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(sys("move rootfs to /"))?;
        nix::unistd::chroot(".").map_err(sys("chroot"))?;
        return nix::unistd::chdir("/").map_err(sys("chdir /"));
    }
    let old: OwnedFd = std::fs::File::open("/")
        .map_err(|e| RuntimeError::io("cannot open", "/", e))?
        .into();
    let new: OwnedFd = std::fs::File::open(rootfs)
        .map_err(|e| RuntimeError::io("cannot open", rootfs, e))?
        .into();
    use std::os::fd::AsRawFd;
    nix::unistd::fchdir(new.as_raw_fd()).map_err(sys("fchdir new root"))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; it is
    // then detached without ever needing a directory for it in the rootfs.
    nix::unistd::pivot_root(".", ".")
        .map_err(sys(format!("pivot_root to {}", rootfs.display())))?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(sys("fchdir old root"))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make old root slave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// After entering the rootfs: propagation, read-only root, masked and read-only paths.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(prop) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(sys("set rootfsPropagation"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        bind_remount("/", MsFlags::MS_RDONLY)
            .map_err(sys("remount / read-only (root.readonly)"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(p)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(p)?;
    }
    Ok(())
}

fn mask_path(p: &str) -> Result<()> {
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()), // Nothing there: nothing to hide.
    };
    let result = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.map_err(sys(format!("mask {p} (linux.maskedPaths)")))
}

fn readonly_path(p: &str) -> Result<()> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("bind {p} (linux.readonlyPaths)")))?;
    bind_remount(p, MsFlags::MS_RDONLY | MsFlags::MS_REC)
        .map_err(sys(format!("remount {p} read-only (linux.readonlyPaths)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let s = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/cpu rw,nosuid shared:12 - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/systemd rw,nosuid shared:14 - cgroup cgroup rw,xattr,name=systemd
";
        let h = parse_cgroup_mountinfo(s);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].fstype, "cgroup2");
        assert_eq!(h[1].options, "cpu");
        assert_eq!(h[3].options, "name=systemd");
        assert_eq!(h[3].mountpoint, "/sys/fs/cgroup/systemd");
    }
}
