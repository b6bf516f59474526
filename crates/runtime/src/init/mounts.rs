//! The mounts of config.json: option parsing and performing one mount safely.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::error::{Result, RuntimeError};
use crate::sys::resolve::{create_file_in, fd_path, mkdir_all_in, open_in_root};

/// Mount options split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Flags that must be cleared (e.g. `rw`, `suid`), relevant for remounts.
    pub clear: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (`mode=755,size=64k`).
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
}

/// The propagation flags a name stands for.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Parse the `options` list of a mount.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                out.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                out.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            // Options of other runtimes that need no action here.
            "tmpcopyup" | "idmap" | "ridmap" | "rro" | "rrw" => {
                (MsFlags::empty(), MsFlags::empty())
            }
            other => {
                if let Some(p) = propagation_flag(other) {
                    out.propagation.push(p);
                } else {
                    data.push(other.to_owned());
                }
                continue;
            }
        };
        out.flags = (out.flags | set) & !clear;
        out.clear = (out.clear | clear) & !set;
    }
    out.data = data.join(",");
    out
}

/// Turn a statvfs flag word into the mount flags that a bind remount must
/// keep (the kernel refuses to clear "locked" flags inherited from the host).
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

fn mount_err(m: &Mount, what: &str, e: nix::Error) -> RuntimeError {
    RuntimeError::sys(
        format!(
            "mount {} on {} ({what})",
            source_str(m),
            m.destination().display()
        ),
        e,
    )
}

fn source_str(m: &Mount) -> String {
    m.source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| m.typ().clone().unwrap_or_default())
}

/// Remount `target` (an already mounted bind) with `flags`, keeping locked flags.
pub fn bind_remount(target: &str, flags: MsFlags) -> nix::Result<()> {
    let keep = locked_flags(target);
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep,
        None::<&str>,
    )
}

/// Perform one mount of config.json inside the rootfs open as `root`.
///
/// `bundle` resolves relative bind sources. The destination is resolved
/// inside the rootfs, never following a symlink out of it.
pub fn mount_into(root: BorrowedFd<'_>, bundle: &Path, m: &Mount) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.bind || typ == "bind";
    let dest = m.destination();
    let source: Option<PathBuf> = m.source().as_ref().map(|s| {
        if bind && s.is_relative() {
            bundle.join(s)
        } else {
            s.clone()
        }
    });

    // Create the mount point: a file for a bind of a file, a directory otherwise.
    let source_is_file = bind
        && source
            .as_ref()
            .is_some_and(|s| s.metadata().is_ok_and(|md| !md.is_dir()));
    let target_fd = if source_is_file {
        create_file_in(root, dest)
    } else {
        mkdir_all_in(root, dest, 0o755)
    }
    .map_err(|e| RuntimeError::io("cannot create mount point", dest, e))?;
    let target = fd_path(target_fd.as_fd());

    if bind {
        let src = source.as_ref().ok_or_else(|| RuntimeError::InvalidConfig {
            field: format!("mounts[{}].source", dest.display()),
            reason: "a bind mount needs a source".into(),
        })?;
        if !src.exists() {
            return Err(RuntimeError::io(
                "bind mount source",
                src,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(src.as_path()),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| mount_err(m, "bind", e))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        // The descriptor names the covered directory; reopen to reach the new mount.
        let top = open_in_root(root, dest, libc::O_PATH)
            .map_err(|e| RuntimeError::io("cannot reopen mount point", dest, e))?;
        let top_path = fd_path(top.as_fd());
        if !extra.is_empty() {
            bind_remount(&top_path, extra | rec).map_err(|e| mount_err(m, "remount", e))?;
        }
        for p in &opts.propagation {
            mount(
                None::<&str>,
                top_path.as_str(),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| mount_err(m, "propagation", e))?;
        }
        return Ok(());
    }

    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let src = source.as_deref().unwrap_or(Path::new(typ));
    match mount(Some(src), target.as_str(), Some(typ), flags, data) {
        Ok(()) => {}
        // sysfs cannot be mounted without a network namespace of our own in
        // a user namespace; bind the host's read-only instead (as runc does).
        Err(nix::Error::EPERM) if typ == "sysfs" => {
            mount(
                Some("/sys"),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| mount_err(m, "bind /sys", e))?;
        }
        Err(e) => return Err(mount_err(m, typ, e)),
    }
    if !opts.propagation.is_empty() {
        let top = open_in_root(root, dest, libc::O_PATH)
            .map_err(|e| RuntimeError::io("cannot reopen mount point", dest, e))?;
        for p in &opts.propagation {
            mount(
                None::<&str>,
                fd_path(top.as_fd()).as_str(),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| mount_err(m, "propagation", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> MountOptions {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = opts(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn rbind_and_propagation() {
        let o = opts(&["rbind", "ro", "rslave"]);
        assert!(o.bind);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }
}
