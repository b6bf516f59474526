//! Errors of compiling and installing a seccomp profile.
//!
//! Compile errors name the field of `config.json` that is wrong, as a path a user can
//! find (`linux.seccomp.syscalls[3].args[0].index`), together with the offending value.

use std::io;

/// Why a profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile asks for something vessel does not implement.
    #[error("{field} {value} is not supported: {reason}")]
    Unsupported {
        /// Path of the field, e.g. `linux.seccomp.syscalls[2].action`.
        field: String,
        /// The value found there, e.g. `SCMP_ACT_NOTIFY`.
        value: String,
        /// What is missing.
        reason: &'static str,
    },

    /// A number lies outside what the kernel accepts.
    #[error("{field} {value} is out of range ({range})")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// The value found there.
        value: u64,
        /// The accepted range, e.g. `0..=5`.
        range: &'static str,
    },

    /// `errnoRet` (or `defaultErrnoRet`) is set for an action that returns no errno; the
    /// runtime spec requires an error here rather than ignoring it.
    #[error("{field} is set, but {action} does not return an errno")]
    ErrnoNotApplicable {
        /// Path of the errno field.
        field: String,
        /// The action it belongs to.
        action: String,
    },

    /// The profile breaks a rule of the runtime spec.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// Which rule is broken.
        reason: &'static str,
    },

    /// vessel has no syscall table for the architecture it runs on.
    #[error("Seccomp profiles are not supported on architecture {arch} (only x86_64)")]
    UnsupportedArchitecture {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },

    /// seccompiler refused a filter, e.g. because it exceeds the kernel's 4096 instructions.
    #[error("Building seccomp filter {index} ({role}) failed")]
    Build {
        /// Position of the filter in install order.
        index: usize,
        /// What the filter is for, e.g. `syscalls -> SCMP_ACT_ERRNO(1)`.
        role: String,
        /// seccompiler's reason.
        #[source]
        source: seccompiler::BackendError,
    },

    /// The program seccompiler produced does not start with the architecture check this
    /// crate patches (see `arch::add_x32_guard`); a seccompiler upgrade changed its layout.
    #[error("Seccomp filter {index} does not start with seccompiler's architecture check")]
    UnexpectedLayout {
        /// Position of the filter in install order.
        index: usize,
    },

    /// seccomp(2) (or the prctl fallback) failed. Filters before `index` stay installed:
    /// the caller must treat this as fatal for the process.
    #[error("Installing seccomp filter {index} of {count} (flags {flags:#x}) failed")]
    Install {
        /// Position of the filter that failed.
        index: usize,
        /// Number of filters in the profile.
        count: usize,
        /// The `SECCOMP_FILTER_FLAG_*` bits passed.
        flags: u32,
        /// The errno; EACCES usually means neither no_new_privs nor CAP_SYS_ADMIN.
        #[source]
        source: io::Error,
    },

    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not take the filter.
    #[error("Installing seccomp filter {index} of {count}: thread {tid} could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)")]
    ThreadSync {
        /// Position of the filter that failed.
        index: usize,
        /// Number of filters in the profile.
        count: usize,
        /// The thread the kernel reported.
        tid: i64,
    },
}
