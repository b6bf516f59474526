//! The container side of `create`: code that runs in the forked child,
//! enters namespaces, builds the rootfs and waits for `start`.
//!
//! Stage 1 (forked by the runtime) joins and creates namespaces; when the pid
//! namespace changes it forks stage 2, which is the container's pid 1. Every
//! failure is sent to the runtime as an error chain before the child exits.

pub mod cgroup_gate;
pub mod console;
pub mod devices;
pub mod mounts;
pub mod rootfs;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use vessel_seccomp::CompiledProfile;

use crate::error::{Result, RuntimeError};
use crate::hooks::{self, HookKind, HookState};
use crate::namespaces::{clone_flag, NamespacePlan};
use crate::process::{self, Finalize};
use crate::sys::fork::{exit_child, fork, Forked};
use crate::sys::sync::{SyncChannel, SyncMsg};
use cgroup_gate::CgroupGate;

/// What the init needs, prepared by the runtime before forking.
#[derive(Debug)]
pub struct InitContext {
    /// Container id.
    pub id: String,
    /// The config.
    pub spec: Spec,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs on the host.
    pub rootfs: PathBuf,
    /// Namespaces to create and join.
    pub plan: NamespacePlan,
    /// `O_PATH` descriptor of the exec FIFO.
    pub exec_fifo: OwnedFd,
    /// Connected `--console-socket`, when process.terminal is set.
    pub console: Option<OwnedFd>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// Compiled seccomp profile.
    pub seccomp: Option<CompiledProfile>,
    /// The container's cgroup path (for cgroup mounts without a cgroup namespace).
    pub cgroup_path: String,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
}

/// Entry point of the forked child. Never returns.
pub fn stage1(ctx: InitContext, chan: SyncChannel) -> ! {
    let err = match stage1_inner(&ctx, &chan) {
        Ok(()) => match init_main(&ctx, &chan) {
            Ok(e) | Err(e) => e,
        },
        Err(e) => e,
    };
    report(&chan, &err);
    exit_child(1)
}

fn report(chan: &SyncChannel, err: &RuntimeError) {
    if chan.send(&SyncMsg::Error { chain: err.chain() }).is_err() {
        // The runtime is gone (we are past `create`): stderr is all there is.
        let _ = writeln!(
            std::io::stderr(),
            "vessel-runtime init: {}",
            err.chain().join(": ")
        );
    }
}

fn expect(chan: &SyncChannel, want: SyncMsg) -> Result<()> {
    match chan.recv() {
        Ok(m) if m == want => Ok(()),
        Ok(m) => Err(RuntimeError::InitDied(format!("unexpected message {m:?}"))),
        Err(e) => Err(RuntimeError::InitDied(e.to_string())),
    }
}

fn stage1_inner(ctx: &InitContext, chan: &SyncChannel) -> Result<()> {
    // No waiting for the runtime here: it moves us into the cgroup while we
    // work (see cgroup_gate); the cgroup namespace waits for the init.
    for (typ, path) in &ctx.plan.join {
        let fd = std::fs::File::open(path)
            .map_err(|e| RuntimeError::io("cannot open namespace", path, e))?;
        let flag = clone_flag(*typ).unwrap_or(CloneFlags::empty());
        nix::sched::setns(&fd, flag)
            .map_err(|e| RuntimeError::sys(format!("setns {}", path.display()), e))?;
    }
    let mut new = ctx.plan.new - CloneFlags::CLONE_NEWCGROUP;
    if new.contains(CloneFlags::CLONE_NEWUSER) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
            .map_err(|e| RuntimeError::sys("unshare user namespace", e))?;
        chan.send(&SyncMsg::MapRequest {
            pid: std::process::id() as i32,
        })
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
        expect(chan, SyncMsg::MapDone)?;
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(
            |e| RuntimeError::sys("setresgid 0 in the user namespace (is gid 0 mapped?)", e),
        )?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(
            |e| RuntimeError::sys("setresuid 0 in the user namespace (is uid 0 mapped?)", e),
        )?;
        new.remove(CloneFlags::CLONE_NEWUSER);
    }
    if !new.is_empty() {
        nix::sched::unshare(new).map_err(|e| RuntimeError::sys(format!("unshare {new:?}"), e))?;
    }
    if ctx.plan.changes_pid_ns() {
        // The init must not talk to the runtime before stage 1 has reported
        // its pid: two processes writing to one socket give no ordering. It
        // waits on this pipe for stage 1's byte, sent once the pid is on its
        // way; end of file without it means stage 1 died first (the runtime
        // then never learns our pid and cannot clean us up), so we leave.
        let (wait_r, wait_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RuntimeError::sys("pipe", e))?;
        match fork().map_err(|e| RuntimeError::sys("fork into the pid namespace", e))? {
            Forked::Parent(child) => {
                drop(wait_r);
                if chan
                    .send(&SyncMsg::Pid {
                        pid: child.as_raw(),
                    })
                    .is_ok()
                {
                    let _ = nix::unistd::write(&wait_w, b"1");
                }
                drop(wait_w);
                exit_child(0);
            }
            Forked::Child => {
                drop(wait_w);
                let mut byte = [0u8; 1];
                let n = loop {
                    match nix::unistd::read(wait_r.as_raw_fd(), &mut byte) {
                        Err(nix::Error::EINTR) => continue,
                        other => break other,
                    }
                };
                if n != Ok(1) {
                    exit_child(1);
                }
            }
        }
    } else {
        chan.send(&SyncMsg::Pid {
            pid: std::process::id() as i32,
        })
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
    }
    Ok(())
}

/// Set the container up, report ready, wait for `start`, exec. Returns only the error.
fn init_main(ctx: &InitContext, chan: &SyncChannel) -> Result<RuntimeError> {
    nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    let spec = &ctx.spec;
    let process = spec.process().as_ref().expect("validated: process present");
    let hooks = spec.hooks().as_ref();
    // Hooks get the pid as the host sees it, not our pid in the container's
    // pid namespace. /proc is still the host's here (the container's own is
    // mounted later) and /proc/self resolves in the pid namespace of that /proc.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(std::process::id() as i32);
    let gate = CgroupGate::new(chan, ctx.plan.new.contains(CloneFlags::CLONE_NEWCGROUP));
    let state_of = |status| HookState {
        oci_version: spec.version(),
        id: &ctx.id,
        status,
        pid: Some(host_pid),
        bundle: ctx.bundle.to_str().unwrap_or(""),
        annotations: spec.annotations().as_ref(),
    };

    if ctx.plan.new.contains(CloneFlags::CLONE_NEWNS) {
        let plan = rootfs::RootfsPlan {
            spec,
            rootfs: &ctx.rootfs,
            bundle: &ctx.bundle,
            in_userns: ctx.plan.has(LinuxNamespaceType::User),
            new_cgroupns: ctx.plan.new.contains(CloneFlags::CLONE_NEWCGROUP),
            cgroup_path: &ctx.cgroup_path,
            cgroup_gate: &gate,
        };
        let _root = rootfs::prepare(&plan)?;
        gate.pass()?;
        run_create_hooks(chan, hooks)?;
        hooks::run_all(HookKind::CreateContainer, hooks, &state_of("creating"))?;
        rootfs::enter(&ctx.rootfs, ctx.no_pivot)?;
    } else {
        gate.pass()?;
        run_create_hooks(chan, hooks)?;
        hooks::run_all(HookKind::CreateContainer, hooks, &state_of("creating"))?;
        // Without a mount namespace of our own, a chroot is the best we can do.
        nix::unistd::chroot(&ctx.rootfs)
            .map_err(|e| RuntimeError::sys(format!("chroot {}", ctx.rootfs.display()), e))?;
        nix::unistd::chdir("/").map_err(|e| RuntimeError::sys("chdir /", e))?;
    }
    // Like runc, create a missing process.cwd (images often name a working
    // directory they do not ship). We are inside the rootfs now, so the path
    // cannot lead out of it; do it before root.readonly takes effect.
    if let Err(e) = std::fs::create_dir_all(process.cwd()) {
        return Err(RuntimeError::io(
            "process.cwd: cannot create",
            process.cwd(),
            e,
        ));
    }
    // Sysctls go before readonlyPaths, which usually make /proc/sys read-only.
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value)
                .map_err(|e| RuntimeError::io("linux.sysctl: cannot write", path, e))?;
        }
    }
    if ctx.plan.new.contains(CloneFlags::CLONE_NEWNS) {
        rootfs::finish(spec)?;
    }
    if ctx.plan.has(LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h)
                .map_err(|e| RuntimeError::sys(format!("sethostname {h:?}"), e))?;
        }
        if let Some(d) = spec.domainname() {
            let c =
                std::ffi::CString::new(d.as_str()).map_err(|_| RuntimeError::InvalidConfig {
                    field: "domainname".into(),
                    reason: "contains a NUL byte".into(),
                })?;
            // SAFETY: setdomainname reads `len` bytes of a valid C string.
            let ret = unsafe { libc::setdomainname(c.as_ptr(), d.len()) };
            if ret != 0 {
                return Err(RuntimeError::sys(
                    format!("setdomainname {d:?}"),
                    nix::Error::last(),
                ));
            }
        }
    }
    let executable = process::prepare(process, ctx.console.as_ref())?;

    chan.send(&SyncMsg::Ready)
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
    wait_for_start(&ctx.exec_fifo)?;

    hooks::run_all(HookKind::StartContainer, hooks, &state_of("running"))?;
    Ok(process::finalize_and_exec(&Finalize {
        process,
        executable: &executable,
        seccomp: ctx.seccomp.as_ref(),
        preserve_fds: ctx.preserve_fds,
    }))
}

/// Have the runtime run the prestart and createRuntime hooks (they run in
/// its namespaces). Without any, the round trip is skipped.
fn run_create_hooks(chan: &SyncChannel, hooks: Option<&oci_spec::runtime::Hooks>) -> Result<()> {
    let any = hooks.is_some_and(|h| {
        !HookKind::Prestart.select(h).is_empty() || !HookKind::CreateRuntime.select(h).is_empty()
    });
    if !any {
        return Ok(());
    }
    chan.send(&SyncMsg::RunCreateHooks)
        .map_err(|e| RuntimeError::InitDied(e.to_string()))?;
    expect(chan, SyncMsg::HooksDone)
}

/// Block until `start` opens the FIFO for reading, then tell it we go on.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    // The descriptor is O_PATH (opening the FIFO for writing would block
    // before setup); reopen it through /proc now that we are ready to block.
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| {
            RuntimeError::io(
                "cannot open the exec FIFO (does the container mount /proc?)",
                path,
                e,
            )
        })?;
    f.write_all(b"0")
        .map_err(|e| RuntimeError::io("cannot write", "exec.fifo", e))?;
    Ok(())
}

/// The pid the init reported, for the runtime's loop.
pub fn pid_of(msg: &SyncMsg) -> Option<Pid> {
    match msg {
        SyncMsg::Pid { pid } => Some(Pid::from_raw(*pid)),
        _ => None,
    }
}
