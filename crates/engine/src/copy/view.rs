//! The container's filesystem as its processes see it, for `vessel cp`.
//!
//! A running (or paused) container: its root through `/proc/PID/root`,
//! which includes its volumes, binds and tmpfs mounts. A stopped one: its
//! rootfs with the bind mounts and volumes of its config.json mounted
//! again, in a private mount namespace of a short-lived thread (so nothing
//! is mounted on the host and nothing is left behind), read-only when the
//! container's root is.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use oci_spec::runtime::Spec;
use vessel_runtime::init::mounts::mount_into;

use super::CopyError;
use crate::engine::Engine;
use crate::record::ContainerRecord;
use crate::rootfs;

fn view_err(e: impl Into<crate::EngineError>) -> CopyError {
    CopyError::View(Box::new(e.into()))
}

fn sys(what: &str) -> impl FnOnce(nix::Error) -> CopyError + '_ {
    move |e| CopyError::Sys(what.to_owned(), e.into())
}

/// Run `f` with the container's root directory open.
pub(crate) fn with_root<T: Send>(
    engine: &Engine,
    record: &ContainerRecord,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<T, CopyError> + Send,
) -> Result<T, CopyError> {
    if record.state.status.is_active() && record.state.pid > 0 {
        let path = format!("/proc/{}/root", record.state.pid);
        match File::open(&path) {
            Ok(root) => return f(root.as_fd()),
            // It ended since its record was read: its rootfs is the truth.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(CopyError::Sys(path, e)),
        }
    }
    let id = &record.id;
    let rootfs_dir = engine.containers().rootfs(id);
    rootfs::ensure_mounted(engine.images(), id, &rootfs_dir).map_err(view_err)?;
    let bundle = engine.containers().dir(id);
    let spec = Spec::load(bundle.join("config.json"))
        .map_err(|e| CopyError::Invalid(format!("cannot read the container's config.json: {e}")))?;
    let read_only = record.config.read_only;
    std::thread::scope(|s| {
        s.spawn(move || {
            // The thread's own mount namespace: mounts made here vanish
            // with it and never reach the host.
            unshare(CloneFlags::CLONE_NEWNS).map_err(sys("unshare(CLONE_NEWNS)"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(sys("make / private"))?;
            if read_only {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(
                    Some(&rootfs_dir),
                    &rootfs_dir,
                    None::<&str>,
                    flags,
                    None::<&str>,
                )
                .and_then(|()| {
                    vessel_runtime::init::mounts::bind_remount(
                        &rootfs_dir.to_string_lossy(),
                        MsFlags::MS_RDONLY,
                    )
                })
                .map_err(sys("remount the rootfs read-only"))?;
            }
            let root = File::open(&rootfs_dir)
                .map_err(|e| CopyError::Sys(rootfs_dir.display().to_string(), e))?;
            for m in spec.mounts().as_deref().unwrap_or_default() {
                let bind = m.typ().as_deref() == Some("bind")
                    || m.options()
                        .as_ref()
                        .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
                if bind {
                    mount_into(root.as_fd(), Path::new(&bundle), m).map_err(|e| {
                        view_err(crate::EngineError::Runtime {
                            id: id.clone(),
                            source: Box::new(e),
                        })
                    })?;
                }
            }
            f(root.as_fd())
        })
        .join()
        .unwrap_or_else(|_| Err(CopyError::Invalid("the copying thread panicked".into())))
    })
}
