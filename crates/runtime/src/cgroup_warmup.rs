//! Paying the kernel's cgroup-migration grace period in the background.
//!
//! Moving a process into a cgroup (a write to `cgroup.procs`, v1 and v2 alike)
//! takes the kernel's global `cgroup_threadgroup_rwsem` for writing. That
//! percpu rwsem is normally in its fast, reader-biased mode, and its first
//! writer must wait for an RCU grace period to switch it over (unless the
//! hierarchy is mounted with `favordynmods`). Measured here: 6–8 ms on an
//! idle machine, 10–18 ms under load, in the one `write(2)`; runc and crun
//! wait just as long. Writers that come while the switch is under way, or
//! within a grace period after the last writer left, need no grace period
//! of their own.
//!
//! So `create`, `run` and `exec` start a helper process first thing: it
//! writes `0` (itself) to the `cgroup.procs` of the cgroup it is already in —
//! a move that moves nothing — and exits. Its grace period then runs while the
//! runtime re-executes itself (`sealed_exe`), reads config.json and forks
//! stage 1, which creates the namespaces and the init's mounts meanwhile (see
//! `init::cgroup_gate`). The kernel holds `cgroup_mutex` across that wait, so
//! the runtime's creation of the container's cgroup waits for the helper; its
//! own moves after that are quick. Nothing is changed on the host: the helper
//! never leaves its cgroup, and a failed write (no cgroup mount recognised)
//! only means no head start.
//!
//! The helper is the runtime's child. Its pid travels across the runtime's
//! re-execution in [`PID_ENV`] so that the re-executed runtime can reap it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::container::CGROUP_ROOT;
use crate::sys::fork::{exit_child, fork, Forked};

/// Environment variable that hands the helper's pid to the re-executed runtime.
pub const PID_ENV: &str = "_VESSEL_CGROUP_WARMUP_PID";

/// The helper started by [`start`] (or inherited across the re-exec), to be reaped.
#[derive(Debug)]
#[must_use = "reap the helper with `finish` once the container has joined its cgroup"]
pub struct Warmup {
    pid: Option<Pid>,
}

impl Warmup {
    /// No helper (for commands that join no cgroup).
    pub fn none() -> Warmup {
        Warmup { pid: None }
    }

    /// Name the helper in [`PID_ENV`] for the image this process is about to
    /// execute, which adopts it in its own [`start`].
    pub fn hand_over(&self) {
        if let Some(pid) = self.pid {
            std::env::set_var(PID_ENV, pid.as_raw().to_string());
        }
    }

    /// Reap the helper. Waiting cannot take long: by the time the runtime's
    /// own cgroup write has returned, the helper's has too.
    pub fn finish(self) {
        if let Some(pid) = self.pid {
            let _ = waitpid(pid, None);
        }
    }
}

/// Start the helper, or adopt the one an earlier image of this process
/// started and handed over (then [`PID_ENV`] names it; it is removed from the
/// environment, so that nothing started later inherits it).
///
/// Must be called while the process is single-threaded (it forks).
pub fn start() -> Warmup {
    if let Some(value) = std::env::var_os(PID_ENV) {
        std::env::remove_var(PID_ENV);
        let pid = value
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|&p| p > 0)
            .map(Pid::from_raw);
        return Warmup { pid };
    }
    match fork() {
        Ok(Forked::Child) => {
            write_own_cgroup_procs(
                &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            );
            exit_child(0)
        }
        Ok(Forked::Parent(pid)) => Warmup { pid: Some(pid) },
        // No helper, no head start; the container's own write still works.
        Err(_) => Warmup::none(),
    }
}

/// Write `0` to the `cgroup.procs` of the first hierarchy of `/proc/self/cgroup`
/// (its text given) whose file can be opened.
fn write_own_cgroup_procs(proc_self_cgroup: &str) {
    for procs in procs_files(Path::new(CGROUP_ROOT), proc_self_cgroup) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&procs);
        if let Ok(mut f) = file {
            if f.write_all(b"0").is_ok() {
                return;
            }
        }
    }
}

/// Candidate `cgroup.procs` files of the cgroups listed in `/proc/self/cgroup`
/// text, in its order: `N:controllers:/path` is `<root>/<controllers>/path` on
/// v1 (`name=X` mounted as `X`); the v2 line `0::/path` is `<root>/path` on a
/// v2 host and `<root>/unified/path` on a hybrid one.
fn procs_files(root: &Path, proc_self_cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(rel) = path.strip_prefix('/') else {
            continue;
        };
        if rel.split('/').any(|c| c == "..") {
            continue;
        }
        if controllers.is_empty() {
            out.push(root.join(rel).join("cgroup.procs"));
            out.push(root.join("unified").join(rel).join("cgroup.procs"));
        } else {
            let dir = controllers.strip_prefix("name=").unwrap_or(controllers);
            out.push(root.join(dir).join(rel).join("cgroup.procs"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hybrid_lines_map_to_their_hierarchies() {
        let text = "9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/\n0::/\n";
        let got = procs_files(Path::new("/sys/fs/cgroup"), text);
        let want: Vec<PathBuf> = [
            "/sys/fs/cgroup/systemd/cgroup.procs",
            "/sys/fs/cgroup/memory/a/b/cgroup.procs",
            "/sys/fs/cgroup/cpu,cpuacct/cgroup.procs",
            "/sys/fs/cgroup/cgroup.procs",
            "/sys/fs/cgroup/unified/cgroup.procs",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn v2_line_maps_to_the_root_first() {
        let got = procs_files(Path::new("/sys/fs/cgroup"), "0::/user.slice/x.scope\n");
        assert_eq!(
            got[0],
            PathBuf::from("/sys/fs/cgroup/user.slice/x.scope/cgroup.procs")
        );
    }

    #[test]
    fn malformed_and_escaping_lines_are_skipped() {
        let text = "garbage\n3:pids:relative\n5:pids:/../../etc\n";
        assert!(procs_files(Path::new("/sys/fs/cgroup"), text).is_empty());
    }
}
