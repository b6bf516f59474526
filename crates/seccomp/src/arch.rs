//! Which syscall ABIs a profile is compiled for, and their syscall tables.
//!
//! Filters are compiled for the native architecture only (x86_64). seccompiler starts
//! every program with an architecture check (`seccomp_data.arch == AUDIT_ARCH_X86_64`,
//! else `SECCOMP_RET_KILL_PROCESS`), so syscalls of a foreign architecture, including
//! i386 `int 0x80` calls of 32-bit binaries (`SCMP_ARCH_X86`), kill the process even
//! when the profile lists that architecture. Those entries are reported by
//! [`crate::CompiledProfile::skipped_architectures`].
//!
//! x32 is special: its syscalls arrive with the *same* `AUDIT_ARCH_X86_64` and differ
//! only by bit 30 (`__X32_SYSCALL_BIT`) in the number, so seccompiler's check does not
//! catch them. Left alone, an allow-by-default profile could be bypassed by calling the
//! x32 twin of a denied syscall. Therefore:
//! - `SCMP_ARCH_X32` listed: every rule is also compiled for the x32 number of its
//!   syscall (libseccomp does the same), so x32 calls get exactly the profile's verdicts;
//! - not listed: a guard right after the architecture check kills the process on any
//!   number with bit 30 set, as libseccomp's "bad architecture" action and seccompiler's
//!   own arch check do.

use oci_spec::runtime::Arch;
use seccompiler::{sock_filter, BpfProgram, TargetArch};

use crate::error::SeccompError;
use crate::{syscalls_x32, syscalls_x86_64};

/// Bit 30 of the syscall number marks the x32 ABI.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes (linux/filter.h) for the guard and the layout check.
/// BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20).
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP (0x05) | BPF_JEQ (0x10) | BPF_K (0x00).
const BPF_JMP_JEQ_K: u16 = 0x15;
/// BPF_JMP (0x05) | BPF_JGE (0x30) | BPF_K (0x00).
const BPF_JMP_JGE_K: u16 = 0x35;
/// BPF_RET (0x06) | BPF_K (0x00).
const BPF_RET_K: u16 = 0x06;
/// Offsets of `nr` and `arch` in `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
/// `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// The architecture seccompiler compiles for; only x86_64 has syscall tables here.
pub(crate) fn target() -> Result<TargetArch, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else {
        Err(SeccompError::UnsupportedArchitecture {
            arch: std::env::consts::ARCH,
        })
    }
}

/// The ABIs one profile is compiled for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Abis {
    /// Compile rules for x32 numbers too (else: kill x32 calls).
    pub(crate) x32: bool,
    /// Listed architectures that get no rules (their syscalls fail the arch check).
    pub(crate) skipped: Vec<Arch>,
}

impl Abis {
    /// The native ABI is always compiled, listed or not, as libseccomp and runc do.
    pub(crate) fn from_profile(architectures: &[Arch]) -> Self {
        let mut abis = Abis::default();
        for &arch in architectures {
            match arch {
                Arch::ScmpArchNative | Arch::ScmpArchX86_64 => {}
                Arch::ScmpArchX32 => abis.x32 = true,
                other if !abis.skipped.contains(&other) => abis.skipped.push(other),
                _ => {}
            }
        }
        abis
    }

    /// The numbers `name` has in the compiled ABIs; `None` if the native ABI lacks it
    /// (the caller reports it as unknown). An x86_64-only syscall has no x32 number.
    pub(crate) fn numbers(&self, name: &str) -> Option<(u32, Option<u32>)> {
        let native = lookup(syscalls_x86_64::SYSCALLS, name)?;
        let x32 = if self.x32 {
            lookup(syscalls_x32::SYSCALLS, name)
        } else {
            None
        };
        Some((native, x32))
    }
}

fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .binary_search_by(|(entry, _)| (*entry).cmp(name))
        .ok()
        .and_then(|i| table.get(i))
        .map(|&(_, nr)| nr)
}

/// Inserts "if nr has the x32 bit: kill the process" right after seccompiler's
/// three-instruction architecture check.
///
/// No jump crosses the insertion point: the check's only jump lands exactly on it, and
/// every jump seccompiler emits after it is relative and forward. The layout is checked
/// first so that a seccompiler upgrade that changes it fails loudly instead of producing
/// a broken program.
pub(crate) fn add_x32_guard(program: &mut BpfProgram, index: usize) -> Result<(), SeccompError> {
    let expected = [
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    if program.get(..expected.len()) != Some(&expected[..]) {
        return Err(SeccompError::UnexpectedLayout { index });
    }
    let guard = [
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR),
        jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    program.splice(expected.len()..expected.len(), guard);
    Ok(())
}

fn stmt(code: u16, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [syscalls_x86_64::SYSCALLS, syscalls_x32::SYSCALLS] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn looks_up_native_and_x32_numbers() {
        let both = Abis {
            x32: true,
            skipped: vec![],
        };
        assert_eq!(both.numbers("getpid"), Some((39, Some(0x4000_0027))));
        // rt_sigaction has its own x32 number in the 512.. range.
        assert_eq!(both.numbers("rt_sigaction"), Some((13, Some(0x4000_0200))));
        // Newer than the host header, added by the generator's list.
        assert_eq!(both.numbers("fchmodat2"), Some((452, Some(0x4000_01c4))));
        assert_eq!(both.numbers("socketcall"), None);

        let native = Abis::default();
        assert_eq!(native.numbers("getpid"), Some((39, None)));
    }

    #[test]
    fn classifies_architectures() {
        let abis = Abis::from_profile(&[
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchX86,
            Arch::ScmpArchAarch64,
        ]);
        assert!(abis.x32);
        assert_eq!(abis.skipped, vec![Arch::ScmpArchX86, Arch::ScmpArchAarch64]);
    }

    #[test]
    fn guard_refuses_an_unknown_layout() {
        let mut program = vec![stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW)];
        assert!(matches!(
            add_x32_guard(&mut program, 2),
            Err(SeccompError::UnexpectedLayout { index: 2 })
        ));
    }
}
