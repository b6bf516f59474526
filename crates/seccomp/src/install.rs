//! Loading compiled filters into the kernel, and the profile's seccomp(2) flags.
//!
//! [`CompiledProfile::install`] does not set no_new_privs: the kernel requires either
//! no_new_privs or CAP_SYS_ADMIN, and whether the container gets no_new_privs is
//! `process.noNewPrivileges`' decision, made by the runtime.

use std::io;

use oci_spec::runtime::LinuxSeccompFilterFlag as Flag;
use seccompiler::sock_filter;

use crate::error::SeccompError;
use crate::profile::CompiledProfile;

// SECCOMP_FILTER_FLAG_* from linux/seccomp.h (seccomp(2) takes them as unsigned int).
const FLAG_TSYNC: u32 = 1 << 0;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;

/// `struct sock_fprog` from linux/filter.h, pointing at seccompiler's instruction type
/// (which has the same layout as the kernel's `struct sock_filter`).
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// Translates `linux.seccomp.flags` into seccomp(2) flag bits.
pub(crate) fn flag_bits(flags: &[Flag]) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for (i, flag) in flags.iter().enumerate() {
        bits |= match flag {
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            // The kernel accepts it only together with a notification listener.
            Flag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    field: format!("linux.seccomp.flags[{i}]"),
                    value: flag.to_string(),
                    reason: "it only applies to SCMP_ACT_NOTIFY, which vessel does not support",
                })
            }
        };
    }
    Ok(bits)
}

impl CompiledProfile {
    /// Installs every filter on the calling thread (on all threads of the process with
    /// `SECCOMP_FILTER_FLAG_TSYNC`), passing the profile's flags to each.
    ///
    /// Allocates nothing and calls nothing but seccomp(2) (prctl(2) on kernels older
    /// than 3.17), so it may run in a forked child of a multi-threaded parent. The
    /// caller must have set no_new_privs or hold CAP_SYS_ADMIN. If a filter fails,
    /// the ones before it stay installed: treat any error as fatal for the process.
    pub fn install(&self) -> Result<(), SeccompError> {
        let count = self.filters.len();
        for (index, filter) in self.filters.iter().enumerate() {
            let fail = |source| SeccompError::Install {
                index,
                count,
                flags: self.flags,
                source,
            };
            // compile() caps programs at 4096 instructions; this only guards the cast.
            let len = libc::c_ushort::try_from(filter.program.len())
                .map_err(|_| fail(io::Error::from_raw_os_error(libc::EINVAL)))?;
            let prog = SockFprog {
                len,
                filter: filter.program.as_ptr(),
            };
            match load(&prog, self.flags) {
                Loaded::Ok => {}
                Loaded::Err(errno) => return Err(fail(io::Error::from_raw_os_error(errno))),
                Loaded::ThreadSync(tid) => {
                    return Err(SeccompError::ThreadSync { index, count, tid })
                }
            }
        }
        Ok(())
    }
}

enum Loaded {
    Ok,
    Err(i32),
    /// TSYNC: the kernel returned the id of a thread it could not synchronize.
    ThreadSync(i64),
}

fn load(prog: &SockFprog, flags: u32) -> Loaded {
    let prog_ptr: *const SockFprog = prog;
    // SAFETY: seccomp(2) only reads `prog` and the `len` instructions it points at;
    // both borrows outlive the call, and the kernel copies the program before
    // returning. The arguments match the syscall's (unsigned, unsigned, pointer).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            prog_ptr,
        )
    };
    if rc == 0 {
        return Loaded::Ok;
    }
    if rc > 0 {
        return Loaded::ThreadSync(rc);
    }
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL);
    // Kernels before 3.17 lack seccomp(2); prctl() can load a filter but takes no flags.
    if errno == libc::ENOSYS && flags == 0 {
        // SAFETY: as above: the kernel reads `prog` and its instructions during the call
        // only. The unused trailing arguments are passed as 0, as prctl(2) requires.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                prog_ptr,
                0,
                0,
            )
        };
        if rc == 0 {
            return Loaded::Ok;
        }
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        return Loaded::Err(errno);
    }
    Loaded::Err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_kernel_bits() {
        assert_eq!(flag_bits(&[]).unwrap(), 0);
        assert_eq!(
            flag_bits(&[
                Flag::SeccompFilterFlagLog,
                Flag::SeccompFilterFlagTsync,
                Flag::SeccompFilterFlagSpecAllow,
            ])
            .unwrap(),
            0b111
        );
        assert_eq!(u64::from(FLAG_TSYNC), libc::SECCOMP_FILTER_FLAG_TSYNC);
        assert_eq!(u64::from(FLAG_LOG), libc::SECCOMP_FILTER_FLAG_LOG);
        assert_eq!(
            u64::from(FLAG_SPEC_ALLOW),
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
    }

    #[test]
    fn wait_killable_recv_is_rejected_by_position() {
        let err = flag_bits(&[
            Flag::SeccompFilterFlagLog,
            Flag::SeccompFilterFlagWaitKillableRecv,
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with(
            "linux.seccomp.flags[1] SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"
        ));
    }
}
