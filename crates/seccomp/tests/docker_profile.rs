//! A trimmed but realistic Docker-style default profile (tests/fixtures), as containerd
//! or Docker would write it into `config.json`: allow-list, ERRNO(EPERM) default,
//! argument rules for personality and clone, names only 32-bit x86 has.

mod common;

use common::{raw_syscall, run_confined, Outcome};
use oci_spec::runtime::{Arch, LinuxSeccomp};

const FIXTURE: &str = include_str!("fixtures/docker-like-default.json");

fn spec() -> LinuxSeccomp {
    serde_json::from_str(FIXTURE).expect("fixture must parse as linux.seccomp")
}

#[test]
fn compiles_into_exactly_one_filter() {
    let profile = vessel_seccomp::compile(&spec()).expect("fixture must compile");
    assert_eq!(profile.filter_count(), 1);
    assert_eq!(
        profile.unknown_syscalls(),
        ["_llseek", "fstat64", "mmap2", "socketcall", "ugetrlimit"]
    );
    assert_eq!(profile.skipped_architectures(), [Arch::ScmpArchX86]);
}

#[test]
fn behaves_like_the_docker_default_when_installed() {
    let profile = vessel_seccomp::compile(&spec()).expect("fixture must compile");
    fn check() -> i32 {
        // Allowed outright, and the personality query allowed by its argument rule.
        if raw_syscall(libc::SYS_getpid, 0, 0) <= 0
            || raw_syscall(libc::SYS_personality, 0xffff_ffff, 0) < 0
        {
            return 200;
        }
        // personality(READ_IMPLIES_EXEC) matches no rule: default EPERM.
        if raw_syscall(libc::SYS_personality, 0x0040_0000, 0) != -i64::from(libc::EPERM) {
            return 201;
        }
        // clone with CLONE_NEWUSER fails the masked rule: EPERM, and no child is made.
        if raw_syscall(
            libc::SYS_clone,
            0x1000_0000 | libc::SIGCHLD as libc::c_ulong,
            0,
        ) != -i64::from(libc::EPERM)
        {
            return 202;
        }
        // Not in the list at all; would succeed unfiltered.
        if raw_syscall(libc::SYS_getcpu, 0, 0) != -i64::from(libc::EPERM) {
            return 203;
        }
        0
    }
    assert_eq!(run_confined(&profile, check), Outcome::Exited(0));
}
