//! The result of compiling a profile: ready-to-install BPF programs.

use oci_spec::runtime::Arch;
use seccompiler::{BpfProgram, SeccompAction};

/// A compiled OCI seccomp profile: one or more BPF programs and the seccomp(2) flags
/// to install them with. Everything [`CompiledProfile::install`] needs is built here,
/// so installing allocates nothing and can run in a freshly forked child.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    /// In install order; see `compile` for why there may be more than one.
    pub(crate) filters: Vec<Filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits passed with every filter.
    pub(crate) flags: u32,
    /// Syscall names the native ABI does not have, in profile order, without duplicates.
    pub(crate) unknown_syscalls: Vec<String>,
    /// Listed architectures no rules were compiled for.
    pub(crate) skipped_architectures: Vec<Arch>,
}

/// One BPF program and what it decides.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) program: BpfProgram,
    pub(crate) role: Role,
}

/// The two kinds of filter `compile` stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// Syscalls a rule matches -> ALLOW; everything else -> the profile's default action.
    Default(SeccompAction),
    /// Syscalls a rule with this action matches -> the action; everything else -> ALLOW.
    Group(SeccompAction),
}

impl CompiledProfile {
    /// Number of BPF programs [`CompiledProfile::install`] loads (0 for a profile that
    /// allows everything).
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Syscall names of the profile that this architecture does not have. They are
    /// ignored, as libseccomp and runc do, because profiles are written for many
    /// architectures and kernel versions; the runtime may log them.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown_syscalls
    }

    /// Architectures listed in the profile that were not compiled (anything but the
    /// native x86_64 and x32). Their syscalls fail seccompiler's architecture check,
    /// which kills the process; e.g. 32-bit (`SCMP_ARCH_X86`) binaries cannot run.
    pub fn skipped_architectures(&self) -> &[Arch] {
        &self.skipped_architectures
    }
}
