//! Compiles OCI seccomp profiles (`linux.seccomp` of a runtime bundle's `config.json`)
//! to BPF with seccompiler, and installs them.
//!
//! ```no_run
//! # fn demo(spec: &oci_spec::runtime::LinuxSeccomp) -> Result<(), vessel_seccomp::SeccompError> {
//! // In the runtime, before fork: all parsing, lookups and allocation happen here.
//! let profile = vessel_seccomp::compile(spec)?;
//! for name in profile.unknown_syscalls() {
//!     eprintln!("seccomp: {name} does not exist on this architecture, ignored");
//! }
//! // In the container's init, after no_new_privs and right before execve:
//! profile.install()?;
//! # Ok(()) }
//! ```
//!
//! How a profile becomes one or more stacked filters is explained in `compile.rs`;
//! which architectures are covered in `arch.rs`; docs/seccomp.md has the summary.

mod action;
mod arch;
mod compile;
mod condition;
mod error;
mod eval;
mod install;
mod order;
mod profile;
mod syscalls_x32;
mod syscalls_x86_64;

#[cfg(test)]
mod compile_tests;

pub use error::SeccompError;
pub use profile::CompiledProfile;

/// Compiles an OCI `linux.seccomp` for the native architecture (x86_64, plus the x32
/// ABI when the profile lists `SCMP_ARCH_X32`).
///
/// Syscall names this architecture lacks are ignored and listed in
/// [`CompiledProfile::unknown_syscalls`]. Fails, naming the field, on anything the
/// kernel or the runtime spec would not accept, and on SCMP_ACT_NOTIFY.
pub fn compile(profile: &oci_spec::runtime::LinuxSeccomp) -> Result<CompiledProfile, SeccompError> {
    compile::compile(profile)
}
