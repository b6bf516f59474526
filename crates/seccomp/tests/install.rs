//! Installs compiled profiles for real, in forked children, and checks what the kernel
//! answers. Needs no privilege: the child sets no_new_privs first.

mod common;

use common::{compile_json, raw_syscall, run_confined, Outcome};

/// A parent directory that does not exist: an unfiltered mkdir fails with ENOENT, so
/// the tests can tell the filter's EPERM apart and never create anything.
const MISSING_DIR: &std::ffi::CStr = c"/nonexistent-vessel-seccomp-test/dir";

/// Marker results of the checks, distinct from any errno they report.
const UNEXPECTED: i32 = 200;

fn errno_of(rc: i64) -> i32 {
    if rc < 0 {
        i32::try_from(-rc).unwrap_or(UNEXPECTED)
    } else {
        0
    }
}

#[test]
fn deny_list_blocks_mkdir_with_eperm_and_allows_the_rest() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
        }"#,
    );
    assert_eq!(profile.filter_count(), 1);
    fn check() -> i32 {
        if raw_syscall(libc::SYS_getpid, 0, 0) <= 0 {
            return UNEXPECTED;
        }
        errno_of(raw_syscall(
            libc::SYS_mkdir,
            MISSING_DIR.as_ptr() as libc::c_ulong,
            0o755,
        ))
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(libc::EPERM));

    // Control: without the profile the same call reaches the kernel.
    let unfiltered = raw_syscall(
        libc::SYS_mkdir,
        MISSING_DIR.as_ptr() as libc::c_ulong,
        0o755,
    );
    assert_eq!(errno_of(unfiltered), libc::ENOENT);
}

#[test]
fn allow_list_returns_default_errno_for_everything_else() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 13,
            "syscalls": [{ "names": ["getpid", "exit_group"], "action": "SCMP_ACT_ALLOW" }]
        }"#,
    );
    assert_eq!(profile.filter_count(), 1);
    fn check() -> i32 {
        if raw_syscall(libc::SYS_getpid, 0, 0) <= 0 {
            return UNEXPECTED;
        }
        errno_of(raw_syscall(libc::SYS_getppid, 0, 0))
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(libc::EACCES));
}

#[test]
fn argument_condition_allows_only_the_personality_query() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                { "names": ["exit_group"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{ "index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ" }] }
            ]
        }"#,
    );
    assert_eq!(profile.filter_count(), 1);
    fn check() -> i32 {
        // 0xffffffff only queries the current persona.
        if raw_syscall(libc::SYS_personality, 0xffff_ffff, 0) < 0 {
            return UNEXPECTED;
        }
        errno_of(raw_syscall(libc::SYS_personality, 0, 0))
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(libc::EPERM));
}

#[test]
fn kill_process_ends_the_child_with_sigsys() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS" }]
        }"#,
    );
    fn check() -> i32 {
        raw_syscall(libc::SYS_getppid, 0, 0);
        UNEXPECTED
    }
    assert_eq!(
        run_confined(&profile, check),
        Outcome::Signaled(libc::SIGSYS)
    );
}

#[test]
fn custom_errno_is_returned() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }]
        }"#,
    );
    fn check() -> i32 {
        errno_of(raw_syscall(libc::SYS_getppid, 0, 0))
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(libc::ENOSYS));
}

#[test]
fn stacked_filters_give_the_most_restrictive_answer() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                { "names": ["getpid", "getppid", "gettid", "exit_group"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
                { "names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS",
                  "args": [{ "index": 0, "value": 7, "op": "SCMP_CMP_EQ" }] }
            ]
        }"#,
    );
    assert_eq!(profile.filter_count(), 3);
    fn errno_check() -> i32 {
        // Plain gettid ignores its argument; the rule only kills when arg0 == 7.
        if raw_syscall(libc::SYS_getpid, 0, 0) <= 0 || raw_syscall(libc::SYS_gettid, 0, 0) <= 0 {
            return UNEXPECTED;
        }
        let getuid = errno_of(raw_syscall(libc::SYS_getuid, 0, 0));
        let getppid = errno_of(raw_syscall(libc::SYS_getppid, 0, 0));
        if getuid != libc::EPERM {
            return UNEXPECTED + 1;
        }
        getppid
    }
    assert_eq!(
        run_confined(&profile, errno_check),
        Outcome::Exited(libc::ENOSYS)
    );
    fn kill_check() -> i32 {
        raw_syscall(libc::SYS_gettid, 7, 0);
        UNEXPECTED
    }
    assert_eq!(
        run_confined(&profile, kill_check),
        Outcome::Signaled(libc::SIGSYS)
    );
}

/// x32 numbers carry bit 30; seccomp sees them whether or not the kernel supports x32.
const X32_GETPID: libc::c_long = 0x4000_0000 | libc::SYS_getpid;

#[test]
fn x32_twin_of_a_denied_syscall_is_killed_unless_x32_is_listed() {
    let native_only = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO" }]
        }"#,
    );
    fn check() -> i32 {
        errno_of(raw_syscall(X32_GETPID, 0, 0))
    }
    assert_eq!(
        run_confined(&native_only, check),
        Outcome::Signaled(libc::SIGSYS)
    );

    let with_x32 = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO" }]
        }"#,
    );
    assert_eq!(run_confined(&with_x32, check), Outcome::Exited(libc::EPERM));
}

#[test]
fn filter_flags_are_accepted_by_the_kernel() {
    let profile = compile_json(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22 }]
        }"#,
    );
    fn check() -> i32 {
        errno_of(raw_syscall(libc::SYS_getppid, 0, 0))
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(libc::EINVAL));
}
