//! Turning the current process into the container's `process` of config.json:
//! rlimits, user and groups, capabilities, no_new_privs, seccomp, then execve.
//!
//! Shared by the container's init and by `exec`.

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability as Cap, CapsHashSet};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};
use vessel_seccomp::CompiledProfile;

use crate::error::{Result, RuntimeError};
use crate::sys::fds;

/// The PATH used to find `args[0]` when the process's env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Apply `process.rlimits`.
pub fn apply_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a properly initialised rlimit struct.
        let ret = unsafe { libc::setrlimit(resource, &lim) };
        if ret != 0 {
            return Err(RuntimeError::sys(
                format!(
                    "setrlimit {:?} soft={} hard={} (process.rlimits)",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
                nix::Error::last(),
            ));
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// What both the init and `exec` do before reporting ready: rlimits, the
/// terminal (its master goes to the console socket), and finding the
/// program, so that a missing one fails the command rather than the container.
pub fn prepare(p: &Process, console_socket: Option<&std::os::fd::OwnedFd>) -> Result<PathBuf> {
    apply_rlimits(p)?;
    if let Some(sock) = console_socket {
        let size = p
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::init::console::setup(sock, size)?;
    }
    let env = p.env().clone().unwrap_or_default();
    let arg0 = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    find_executable(&arg0, &env)
}

/// Find the program `args[0]` names, the way execvp would, but up front so
/// that a missing program fails `create` rather than the container later.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let not_found = |why: &str| RuntimeError::InvalidConfig {
        field: "process.args[0]".into(),
        reason: format!("{arg0:?}: {why}"),
    };
    if arg0.contains('/') {
        use std::os::unix::fs::PermissionsExt;
        let p = PathBuf::from(arg0);
        // execve's own words, so that callers (and users) can tell a
        // missing program from one that cannot be run (docker: 127 vs 126).
        return match std::fs::metadata(&p) {
            Err(_) => Err(not_found("no such file or directory")),
            Ok(m) if m.is_dir() => Err(not_found("is a directory")),
            Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
                Err(not_found("permission denied"))
            }
            Ok(_) => Ok(p),
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(not_found("executable file not found in $PATH"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn to_caps(set: &Option<Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<Cap>().ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// Everything needed to become the container process.
#[derive(Debug)]
pub struct Finalize<'a> {
    /// The process description.
    pub process: &'a Process,
    /// The resolved program.
    pub executable: &'a Path,
    /// Compiled seccomp filters, if any.
    pub seccomp: Option<&'a CompiledProfile>,
    /// Descriptors 3..3+n that must survive into the process.
    pub preserve_fds: i32,
}

/// Drop privileges as config.json says and execve the program. Returns only on error.
pub fn finalize_and_exec(f: &Finalize<'_>) -> RuntimeError {
    match finalize(f) {
        Ok(e) | Err(e) => e,
    }
}

fn finalize(f: &Finalize<'_>) -> Result<RuntimeError> {
    let p = f.process;
    let user = p.user();
    let nnp = p.no_new_privileges().unwrap_or(false);

    nix::unistd::chdir(p.cwd())
        .map_err(|e| RuntimeError::sys(format!("chdir to process.cwd {}", p.cwd().display()), e))?;

    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which
    // is about to be dropped: install it now (runc does the same).
    if !nnp {
        if let Some(s) = f.seccomp {
            s.install().map_err(RuntimeError::Seccomp)?;
        }
    }

    let supported = caps::runtime::thread_all_supported();
    let caps_cfg = p.capabilities().as_ref();
    let bounding = caps_cfg.map(|c| to_caps(c.bounding(), &supported));
    if let Some(bounding) = &bounding {
        for cap in supported.difference(bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| {
                RuntimeError::sys(
                    format!("drop {cap} from the bounding set: {e}"),
                    nix::Error::EPERM,
                )
            })?;
        }
    }

    // Keep capabilities across the uid change; they are set explicitly below.
    nix::sys::prctl::set_keepcaps(true)
        .map_err(|e| RuntimeError::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    let mut groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    let mut seen = HashSet::new();
    groups.retain(|g| seen.insert(*g));
    if let Err(e) = nix::unistd::setgroups(&groups) {
        // In a user namespace with setgroups denied, only an empty list could work.
        if !(e == nix::Error::EPERM && groups.is_empty()) {
            return Err(RuntimeError::sys(
                format!(
                    "setgroups {:?} (process.user.additionalGids)",
                    user.additional_gids()
                ),
                e,
            ));
        }
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| {
        RuntimeError::sys(format!("setresgid {} (process.user.gid)", user.gid()), e)
    })?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| {
        RuntimeError::sys(format!("setresuid {} (process.user.uid)", user.uid()), e)
    })?;
    nix::sys::prctl::set_keepcaps(false)
        .map_err(|e| RuntimeError::sys("prctl(PR_SET_KEEPCAPS)", e))?;

    if let Some(c) = caps_cfg {
        let set = |which: CapSet, value: CapsHashSet, name: &str| {
            caps::set(None, which, &value).map_err(|e| RuntimeError::InvalidConfig {
                field: format!("process.capabilities.{name}"),
                reason: e.to_string(),
            })
        };
        // Order matters: raising inheritable needs CAP_SETPCAP (still
        // effective now), and each capset must keep effective within
        // permitted, so shrink effective before permitted.
        set(
            CapSet::Inheritable,
            to_caps(c.inheritable(), &supported),
            "inheritable",
        )?;
        set(
            CapSet::Effective,
            to_caps(c.effective(), &supported),
            "effective",
        )?;
        set(
            CapSet::Permitted,
            to_caps(c.permitted(), &supported),
            "permitted",
        )?;
        caps::clear(None, CapSet::Ambient).ok();
        for cap in to_caps(c.ambient(), &supported) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| RuntimeError::InvalidConfig {
                field: "process.capabilities.ambient".into(),
                reason: format!("{cap}: {e}"),
            })?;
        }
    } else if !uid.is_root() {
        // No capabilities section: a non-root user gets none (kernel default after setuid).
    }

    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    } else {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    }

    if nnp {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| RuntimeError::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        if let Some(s) = f.seccomp {
            s.install().map_err(RuntimeError::Seccomp)?;
        }
    }

    fds::cloexec_from(3 + f.preserve_fds).map_err(|e| RuntimeError::sys("close_range", e))?;
    for fd in 3..3 + f.preserve_fds {
        let _ = fds::clear_cloexec(fd);
    }

    let cstr = |s: &str, field: &str| {
        CString::new(s).map_err(|_| RuntimeError::InvalidConfig {
            field: field.into(),
            reason: "contains a NUL byte".into(),
        })
    };
    let args: Vec<CString> = p
        .args()
        .iter()
        .flatten()
        .map(|a| cstr(a, "process.args"))
        .collect::<Result<_>>()?;
    let mut env: Vec<CString> = p
        .env()
        .iter()
        .flatten()
        .map(|e| cstr(e, "process.env"))
        .collect::<Result<_>>()?;
    if !p.env().iter().flatten().any(|e| e.starts_with("HOME=")) {
        env.push(CString::new(format!("HOME={}", home_of(user.uid()))).expect("no NUL"));
    }
    let path = cstr(&f.executable.to_string_lossy(), "process.args[0]")?;
    let err = nix::unistd::execve(&path, &args, &env).unwrap_err();
    Ok(RuntimeError::sys(
        format!("exec {}", f.executable.display()),
        err,
    ))
}

/// The home directory of `uid` from the container's /etc/passwd, or `/`.
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_in_path_and_reports_missing() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).unwrap().ends_with("sh"));
        let err = find_executable("no-such-program-xyz", &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-program-xyz") && err.contains("$PATH"),
            "{err}"
        );
        assert!(find_executable("/nonexistent/x", &env).is_err());
    }

    #[test]
    fn oci_capability_names_map_to_caps() {
        let set: Capabilities = serde_json::from_value(serde_json::json!([
            "CAP_CHOWN",
            "CAP_NET_RAW",
            "CAP_SYS_ADMIN"
        ]))
        .unwrap();
        let all = caps::all();
        let got = to_caps(&Some(set), &all);
        assert!(
            got.contains(&Cap::CAP_CHOWN)
                && got.contains(&Cap::CAP_NET_RAW)
                && got.contains(&Cap::CAP_SYS_ADMIN)
        );
        assert_eq!(got.len(), 3);
    }
}
