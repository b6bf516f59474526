//! Unit tests of `compile`: profiles written as JSON, verdicts computed by running the
//! compiled programs in `eval` (no kernel involved).

use oci_spec::runtime::{Arch, LinuxSeccomp};
use seccompiler::SeccompAction;
use serde_json::json;

use crate::arch::Abis;
use crate::eval::{verdict, Call};
use crate::profile::Role;
use crate::{compile, CompiledProfile, SeccompError};

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const LOG: u32 = libc::SECCOMP_RET_LOG;

fn errno(e: u32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e
}

fn parse(value: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("test profile must deserialize")
}

fn compiled(value: serde_json::Value) -> CompiledProfile {
    compile(&parse(value)).expect("test profile must compile")
}

fn compile_err(value: serde_json::Value) -> SeccompError {
    compile(&parse(value)).expect_err("test profile must be rejected")
}

fn numbers(name: &str) -> (u32, u32) {
    let abis = Abis {
        x32: true,
        skipped: vec![],
    };
    let (native, x32) = abis.numbers(name).expect("known syscall");
    (native, x32.expect("syscall exists in x32"))
}

/// Verdict for a native x86_64 call of `name` with `args`.
fn call(profile: &CompiledProfile, name: &str, args: &[u64]) -> u32 {
    verdict(profile, &Call::new(numbers(name).0, args))
}

fn roles(profile: &CompiledProfile) -> Vec<Role> {
    profile.filters.iter().map(|f| f.role.clone()).collect()
}

#[test]
fn conditional_allow_under_an_errno_default_keeps_its_condition() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert_eq!(p.filter_count(), 1);
    assert_eq!(call(&p, "personality", &[0]), ALLOW);
    assert_eq!(call(&p, "personality", &[1]), errno(1));
    assert_eq!(call(&p, "getpid", &[]), errno(1));
}

#[test]
fn entries_for_one_syscall_are_ored_and_args_of_one_entry_anded() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] },
            { "names": ["kill"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 100, "op": "SCMP_CMP_GT" },
                       { "index": 1, "value": 9, "op": "SCMP_CMP_NE" }] }
        ]
    }));
    assert_eq!(p.filter_count(), 1);
    assert_eq!(call(&p, "personality", &[0]), ALLOW);
    assert_eq!(call(&p, "personality", &[8]), ALLOW);
    assert_eq!(call(&p, "personality", &[3]), errno(13));
    assert_eq!(call(&p, "kill", &[200, 15]), ALLOW);
    assert_eq!(call(&p, "kill", &[200, 9]), errno(13));
    assert_eq!(call(&p, "kill", &[50, 15]), errno(13));
}

#[test]
fn comparisons_are_unsigned_64_bit() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["mmap"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["lseek"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 1, "value": 4096, "op": "SCMP_CMP_LE" }] },
            { "names": ["read"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 2, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE" }] }
        ]
    }));
    assert_eq!(call(&p, "mmap", &[0]), ALLOW);
    // A 32-bit comparison would see 0 here.
    assert_eq!(call(&p, "mmap", &[1 << 32]), errno(1));
    assert_eq!(call(&p, "lseek", &[3, 4096]), ALLOW);
    assert_eq!(call(&p, "lseek", &[3, (1 << 32) | 5]), errno(1));
    assert_eq!(call(&p, "read", &[0, 0, 0x1_0000_0000]), ALLOW);
    assert_eq!(call(&p, "read", &[0, 0, 0xffff_ffff]), errno(1));
}

#[test]
fn masked_eq_compares_value_two_under_the_mask() {
    // Docker's clone rule: no namespace flags.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["clone"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0x7E02_0000u64, "valueTwo": 0,
                         "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 1, "value": 0xff00_0000_0000u64,
                         "valueTwo": 0x5400_0000_0000u64, "op": "SCMP_CMP_MASKED_EQ" }] }
        ]
    }));
    let clone_vm_files = 0x0000_0100 | 0x0000_0400;
    let clone_newuser = 0x1000_0000;
    assert_eq!(call(&p, "clone", &[clone_vm_files]), ALLOW);
    assert_eq!(
        call(&p, "clone", &[clone_vm_files | clone_newuser]),
        errno(1)
    );
    assert_eq!(call(&p, "ioctl", &[1, 0x5400_1234_5678]), ALLOW);
    assert_eq!(call(&p, "ioctl", &[1, 0x5500_0000_0000]), errno(1));
}

#[test]
fn deny_list_is_one_filter() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" },
            // Same action as the default: changes nothing, builds nothing.
            { "names": ["getppid"], "action": "SCMP_ACT_ALLOW" }
        ]
    }));
    assert_eq!(roles(&p), vec![Role::Group(SeccompAction::Errno(1))]);
    assert_eq!(call(&p, "mkdir", &[]), errno(1));
    assert_eq!(call(&p, "mkdirat", &[]), errno(1));
    assert_eq!(call(&p, "getpid", &[]), ALLOW);
}

#[test]
fn one_filter_per_distinct_non_allow_action() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            { "names": ["read", "write", "seccomp"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS" },
            { "names": ["reboot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["kexec_load"], "action": "SCMP_ACT_KILL" },
            { "names": ["init_module"], "action": "SCMP_ACT_KILL_THREAD" },
            { "names": ["getpid"], "action": "SCMP_ACT_LOG" }
        ]
    }));
    // reboot's rule repeats the default and is dropped; KILL and KILL_THREAD share.
    // Groups come in reverse order of first appearance.
    assert_eq!(
        roles(&p),
        vec![
            Role::Default(SeccompAction::Errno(1)),
            Role::Group(SeccompAction::Log),
            Role::Group(SeccompAction::KillThread),
            Role::Group(SeccompAction::KillProcess),
            Role::Group(SeccompAction::Errno(38)),
        ]
    );
    assert_eq!(call(&p, "read", &[]), ALLOW);
    assert_eq!(call(&p, "clone3", &[]), errno(38));
    assert_eq!(call(&p, "ptrace", &[]), KILL_PROCESS);
    assert_eq!(call(&p, "reboot", &[]), errno(1));
    assert_eq!(call(&p, "kexec_load", &[]), KILL_THREAD);
    assert_eq!(call(&p, "init_module", &[]), KILL_THREAD);
    assert_eq!(call(&p, "getpid", &[]), LOG);
    assert_eq!(call(&p, "getppid", &[]), errno(1));
}

#[test]
fn when_several_rules_match_the_most_restrictive_wins() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 10, "op": "SCMP_CMP_LT" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
              "args": [{ "index": 0, "value": 5, "op": "SCMP_CMP_GE" }] },
            { "names": ["personality"], "action": "SCMP_ACT_TRAP",
              "args": [{ "index": 0, "value": 7, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert_eq!(call(&p, "personality", &[1]), ALLOW);
    assert_eq!(call(&p, "personality", &[5]), errno(38));
    assert_eq!(call(&p, "personality", &[7]), libc::SECCOMP_RET_TRAP);
    assert_eq!(call(&p, "personality", &[20]), errno(38));
}

#[test]
fn a_rule_repeating_the_default_still_overrides_an_allow_rule() {
    // Both rules match personality(8): the ERRNO one is more restrictive.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert_eq!(call(&p, "personality", &[0]), ALLOW);
    assert_eq!(call(&p, "personality", &[8]), errno(1));
}

#[test]
fn between_equal_actions_the_rule_written_first_wins() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["getppid", "getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
        ]
    }));
    assert_eq!(p.filter_count(), 2);
    assert_eq!(call(&p, "getppid", &[]), errno(38));
    assert_eq!(call(&p, "getpid", &[]), errno(13));
}

#[test]
fn allow_everything_installs_nothing() {
    let p = compiled(json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
    assert_eq!(p.filter_count(), 0);
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(p.filter_count(), 0);
}

#[test]
fn log_default_with_allow_rules() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(call(&p, "getpid", &[]), ALLOW);
    assert_eq!(call(&p, "getppid", &[]), LOG);
}

#[test]
fn unknown_names_are_ignored_and_reported_once() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid", "socketcall", "_llseek"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["socketcall", "no_such_syscall"], "action": "SCMP_ACT_KILL" }
        ]
    }));
    assert_eq!(
        p.unknown_syscalls(),
        ["socketcall", "_llseek", "no_such_syscall"]
    );
    // The KILL entry named nothing that exists, so it builds no filter.
    assert_eq!(p.filter_count(), 1);
    assert_eq!(call(&p, "getpid", &[]), ALLOW);
}

#[test]
fn x32_calls_are_killed_unless_x32_is_listed() {
    let rules = json!([{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO" }]);
    let (getpid, x32_getpid) = numbers("getpid");

    let native_only = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": rules
    }));
    assert_eq!(verdict(&native_only, &Call::new(getpid, &[])), errno(1));
    // Without the guard a deny-list could be bypassed through the x32 number.
    assert_eq!(
        verdict(&native_only, &Call::new(x32_getpid, &[])),
        KILL_PROCESS
    );
    let x32_getppid = numbers("getppid").1;
    assert_eq!(
        verdict(&native_only, &Call::new(x32_getppid, &[])),
        KILL_PROCESS
    );

    let with_x32 = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": rules
    }));
    assert_eq!(verdict(&with_x32, &Call::new(x32_getpid, &[])), errno(1));
    assert_eq!(verdict(&with_x32, &Call::new(x32_getppid, &[])), ALLOW);
}

#[test]
fn foreign_architectures_fail_the_arch_check_and_are_reported() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(
        p.skipped_architectures(),
        [Arch::ScmpArchX86, Arch::ScmpArchAarch64]
    );
    let i386_getpid = Call {
        nr: 20,
        arch: 0x4000_0003, // AUDIT_ARCH_I386
        args: [0; 6],
    };
    assert_eq!(verdict(&p, &i386_getpid), KILL_PROCESS);
}

#[test]
fn notify_is_unsupported_wherever_it_appears() {
    let err = compile_err(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "listenerPath": "/run/agent.sock",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["mount"], "action": "SCMP_ACT_NOTIFY" }
        ]
    }));
    assert!(matches!(err, SeccompError::Unsupported { .. }));
    assert!(err
        .to_string()
        .starts_with("linux.seccomp.syscalls[1].action SCMP_ACT_NOTIFY is not supported"));

    let err = compile_err(json!({ "defaultAction": "SCMP_ACT_NOTIFY" }));
    assert!(err
        .to_string()
        .starts_with("linux.seccomp.defaultAction SCMP_ACT_NOTIFY is not supported"));
}

#[test]
fn listener_fields_follow_the_spec() {
    // Ignored without SCMP_ACT_NOTIFY, as the runtime spec says.
    compiled(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock" }));
    let err = compile_err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x" }));
    assert_eq!(
        err.to_string(),
        "linux.seccomp.listenerMetadata is invalid: it must not be set without listenerPath"
    );
}

#[test]
fn bad_entries_are_named() {
    let err = compile_err(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["write"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["close"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 7, "value": 0, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert_eq!(
        err.to_string(),
        "linux.seccomp.syscalls[3].args[0].index 7 is out of range (0..=5)"
    );

    let err = compile_err(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(
        err.to_string(),
        "linux.seccomp.syscalls[0].names is invalid: it must name at least one syscall"
    );

    let err = compile_err(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1 }]
    }));
    assert_eq!(
        err.to_string(),
        "linux.seccomp.syscalls[0].errnoRet is set, but SCMP_ACT_ALLOW does not return an errno"
    );

    let err = compile_err(json!({ "defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1 }));
    assert!(matches!(err, SeccompError::ErrnoNotApplicable { .. }));
}

#[test]
fn unknown_operators_and_actions_fail_to_parse() {
    let bad_op = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ALLOW",
                       "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_ALMOST" }] }]
    });
    assert!(serde_json::from_value::<LinuxSeccomp>(bad_op).is_err());
    let bad_action = json!({ "defaultAction": "SCMP_ACT_MAYBE" });
    assert!(serde_json::from_value::<LinuxSeccomp>(bad_action).is_err());
}

#[test]
fn too_large_a_filter_is_an_error_not_a_panic() {
    let entries: Vec<_> = (0..1000)
        .map(|i| {
            json!({ "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                    "args": [{ "index": 0, "value": i, "op": "SCMP_CMP_EQ" }] })
        })
        .collect();
    let err = compile_err(json!({ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": entries }));
    assert!(matches!(
        err,
        SeccompError::Build {
            index: 0,
            source: seccompiler::BackendError::FilterTooLarge(_),
            ..
        }
    ));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn flags_are_carried_to_install() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    }));
    assert_eq!(
        u64::from(p.flags),
        libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
}

#[test]
fn a_filter_that_blocks_seccomp_itself_is_installed_last() {
    // The allow-list lacks seccomp: once the default filter is in, no further filter
    // could be installed, so it must come after the ERRNO(38) group.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
        ]
    }));
    assert_eq!(
        roles(&p),
        vec![
            Role::Group(SeccompAction::Errno(38)),
            Role::Default(SeccompAction::Errno(1)),
        ]
    );
    assert_eq!(call(&p, "seccomp", &[1, 0]), errno(1));
    assert_eq!(call(&p, "getppid", &[]), errno(38));
}

#[test]
fn two_filters_blocking_seccomp_cannot_be_installed() {
    let err = compile_err(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
              "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" }] },
            { "names": ["seccomp"], "action": "SCMP_ACT_TRAP",
              "args": [{ "index": 1, "value": 0, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert!(err
        .to_string()
        .starts_with("linux.seccomp.syscalls seccomp is not supported"));

    // Denying seccomp with one action is fine: that filter goes last. (The default
    // filter allows it here: seccomp has a rule, and unconditional rules match.)
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
        ]
    }));
    assert_eq!(call(&p, "seccomp", &[1, 0]), errno(38));
}

#[test]
fn full_table_allow_list_with_x32_fits_in_one_filter() {
    // Roughly Docker's full profile: every syscall, both 64-bit ABIs.
    let names: Vec<&str> = crate::syscalls_x86_64::SYSCALLS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }]
    }));
    // About 3800 of the kernel's 4096 instructions: seccompiler spends five per
    // unconditional syscall.
    assert_eq!(p.filter_count(), 1);
}
