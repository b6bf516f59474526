//! Runs a check in a forked child that installs a seccomp profile, so the filters
//! never touch the test process (seccomp filters cannot be removed once installed).

use vessel_seccomp::CompiledProfile;

/// How the child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `_exit(code)`: the value the check returned.
    Exited(i32),
    /// Killed by this signal (SIGSYS for SCMP_ACT_KILL_*).
    Signaled(i32),
}

/// The child could not set no_new_privs.
pub const NO_NEW_PRIVS_FAILED: i32 = 120;
/// `CompiledProfile::install` failed in the child.
pub const INSTALL_FAILED: i32 = 121;

/// Forks; the child sets no_new_privs (so no privilege is needed), installs `profile`,
/// runs `check` and exits with its result. `check` must only make raw syscalls: after
/// install, anything else (allocation, stdio) may hit the filter or a lock held by
/// another thread of the test process at fork time.
pub fn run_confined(profile: &CompiledProfile, check: fn() -> i32) -> Outcome {
    // SAFETY: fork(2) has no memory-safety preconditions. The test process has other
    // threads, so the child only makes async-signal-safe calls (raw syscalls, the
    // allocation-free install, _exit) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child(profile, check);
    }
    wait(pid)
}

fn child(profile: &CompiledProfile, check: fn() -> i32) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct during the call; no core file for the SIGSYS
    // tests. Failure is harmless, so the result is ignored.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        exit(NO_NEW_PRIVS_FAILED);
    }
    let code = match profile.install() {
        Ok(()) => check(),
        Err(_) => INSTALL_FAILED,
    };
    exit(code)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit(2) ends the child without running the parent's atexit handlers or
    // flushing its buffers, which is what a forked child must do.
    unsafe { libc::_exit(code) }
}

fn wait(pid: libc::pid_t) -> Outcome {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into a live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINTR),
            "waitpid failed: {err}"
        );
    }
    if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        panic!("unexpected wait status {status:#x}")
    }
}

/// `syscall(nr, args...)`, returning the result or `-errno`.
pub fn raw_syscall(nr: libc::c_long, a0: libc::c_ulong, a1: libc::c_ulong) -> i64 {
    // SAFETY: the syscalls the tests make take integers or a pointer to a live static
    // C string; a wrong number at worst fails with an errno.
    let rc = unsafe { libc::syscall(nr, a0, a1) };
    if rc == -1 {
        // Reads errno; no allocation, no syscall, so fine in the confined child.
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        -i64::from(errno)
    } else {
        rc
    }
}

/// Parses and compiles a profile given as JSON text.
#[allow(dead_code)] // each test binary compiles this module; not all use everything
pub fn compile_json(json: &str) -> CompiledProfile {
    let spec: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_str(json).expect("profile JSON must parse");
    vessel_seccomp::compile(&spec).expect("profile must compile")
}
