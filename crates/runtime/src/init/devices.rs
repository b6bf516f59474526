//! Device nodes in the container's /dev.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::error::{Result, RuntimeError};
use crate::sys::resolve::{create_file_in, fd_path, mkdir_all_in, reopen};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Path inside the container.
    pub path: PathBuf,
    /// `c`, `b`, `u` or `p`.
    pub kind: LinuxDeviceType,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: LinuxDeviceType::C,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// `resources` with the device cgroup rules every container gets appended
/// (runc's list), when it has rules at all. A config that starts by denying
/// everything (`{"allow": false, "access": "rwm"}`, runc's default spec) must
/// still leave /dev/null, /dev/pts and the like usable, and mknod allowed: the
/// default device nodes are created from inside the container's cgroup.
pub fn with_default_cgroup_rules(resources: &LinuxResources) -> LinuxResources {
    let mut out = resources.clone();
    let Some(rules) = resources.devices().as_ref().filter(|r| !r.is_empty()) else {
        return out;
    };
    let mut rules = rules.clone();
    use LinuxDeviceType::{B, C};
    for (typ, major, minor, access) in [
        (C, None, None, "m"),
        (B, None, None, "m"),
        (C, Some(1), Some(3), "rwm"),    // null
        (C, Some(1), Some(5), "rwm"),    // zero
        (C, Some(1), Some(7), "rwm"),    // full
        (C, Some(1), Some(8), "rwm"),    // random
        (C, Some(1), Some(9), "rwm"),    // urandom
        (C, Some(5), Some(0), "rwm"),    // tty
        (C, Some(5), Some(1), "rwm"),    // console
        (C, Some(5), Some(2), "rwm"),    // ptmx
        (C, Some(136), None, "rwm"),     // pts/*
        (C, Some(10), Some(200), "rwm"), // net/tun
    ] {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(major);
        rule.set_minor(minor);
        rule.set_access(Some(access.to_owned()));
        rules.push(rule);
    }
    out.set_devices(Some(rules));
    out
}

/// Convert config.json's `linux.devices` entry.
pub fn from_spec(d: &LinuxDevice) -> DeviceNode {
    DeviceNode {
        path: d.path().clone(),
        kind: d.typ(),
        major: d.major(),
        minor: d.minor(),
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Create `dev` inside the rootfs. In a user namespace mknod is not allowed,
/// so the host's node is bind-mounted instead.
pub fn create(root: BorrowedFd<'_>, dev: &DeviceNode, bind_from_host: bool) -> Result<()> {
    let err = |action, e| RuntimeError::io(action, &dev.path, e);
    if bind_from_host {
        let fd = create_file_in(root, &dev.path)
            .map_err(|e| err("cannot create device mount point", e))?;
        return mount(
            Some(dev.path.as_path()),
            fd_path(fd.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RuntimeError::sys(format!("bind device {}", dev.path.display()), e));
    }
    let parent = dev.path.parent().unwrap_or(Path::new("/"));
    let name = dev
        .path
        .file_name()
        .ok_or_else(|| RuntimeError::InvalidConfig {
            field: "linux.devices".into(),
            reason: format!("{} has no file name", dev.path.display()),
        })?;
    let dir =
        mkdir_all_in(root, parent, 0o755).map_err(|e| err("cannot create device directory", e))?;
    let dir = reopen(dir.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| err("cannot open device directory", e))?;
    let kind = match dev.kind {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RuntimeError::InvalidConfig {
                field: format!("linux.devices {}", dev.path.display()),
                reason: "type \"a\" is only valid in cgroup device rules".into(),
            })
        }
    };
    let cname = CString::new(name.as_encoded_bytes()).map_err(|_| RuntimeError::InvalidConfig {
        field: "linux.devices".into(),
        reason: "NUL in path".into(),
    })?;
    let devno = libc::makedev(dev.major as u32, dev.minor as u32);
    // Remove whatever the image had there (a stale node or a planted symlink).
    // SAFETY: unlinkat with a directory fd we own and a single path component.
    unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) };
    // SAFETY: mknodat with a directory fd we own and a single path component.
    let ret = unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), kind | dev.mode, devno) };
    if ret != 0 {
        return Err(err("mknod", std::io::Error::last_os_error()));
    }
    // SAFETY: fchownat/fchmodat with a directory fd we own, a single component, no symlink following.
    let ret = unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            dev.uid,
            dev.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret != 0 {
        return Err(err("chown", std::io::Error::last_os_error()));
    }
    // mknod applies the umask; set the exact mode asked for.
    // SAFETY: as above.
    let ret = unsafe { libc::fchmodat(dir.as_raw_fd(), cname.as_ptr(), dev.mode, 0) };
    if ret != 0 {
        return Err(err("chmod", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The symlinks every container's /dev has.
pub fn create_symlinks(root: BorrowedFd<'_>, with_ptmx: bool) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if with_ptmx {
        links.push(("pts/ptmx", "ptmx"));
    }
    let dev = mkdir_all_in(root, Path::new("/dev"), 0o755)
        .map_err(|e| RuntimeError::io("cannot create", "/dev", e))?;
    let dev = reopen(dev.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| RuntimeError::io("cannot open", "/dev", e))?;
    for (target, name) in links {
        let t = CString::new(target).expect("static");
        let n = CString::new(name).expect("static");
        if with_ptmx && name == "ptmx" {
            // SAFETY: unlinkat on our directory fd with a single component.
            unsafe { libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0) };
        }
        // SAFETY: symlinkat with NUL-terminated strings and a directory fd we own.
        let ret = unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) };
        if ret != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(RuntimeError::io(
                    "cannot create symlink",
                    format!("/dev/{name}"),
                    e,
                ));
            }
        }
    }
    Ok(())
}
