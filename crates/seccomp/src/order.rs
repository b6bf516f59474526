//! Install order: filters that let seccomp(2) through come first.
//!
//! Filters are installed one seccomp(2) call at a time, and each installed filter
//! already judges the next call. An allow-list that does not list `seccomp`, or a rule
//! that denies it, would make every later installation fail. So the filters that let
//! the installation call through (ALLOW or LOG) go first, in their planned order, and
//! at most one that does not may follow, last. A profile whose filters block their own
//! installation twice cannot be installed in any order and is refused at compile time.
//!
//! The check runs the programs on the exact call `install` makes (operation
//! SECCOMP_SET_MODE_FILTER and the profile's flags; the program pointer is unknown and
//! taken as 0, which only matters to a rule that compares a pointer).

use crate::error::SeccompError;
use crate::eval::{self, Call};
use crate::profile::Filter;

/// SYS_seccomp on x86_64.
const SYS_SECCOMP: u32 = 317;

pub(crate) fn for_install(filters: Vec<Filter>, flags: u32) -> Result<Vec<Filter>, SeccompError> {
    let call = Call::new(
        SYS_SECCOMP,
        &[u64::from(libc::SECCOMP_SET_MODE_FILTER), u64::from(flags)],
    );
    let lets_through = |filter: &Filter| {
        matches!(
            eval::run(&filter.program, &call),
            Some(libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG)
        )
    };
    let (mut ordered, blocking): (Vec<_>, Vec<_>) = filters.into_iter().partition(lets_through);
    if blocking.len() > 1 {
        return Err(SeccompError::Unsupported {
            field: "linux.seccomp.syscalls".to_string(),
            value: "seccomp".to_string(),
            reason: "more than one of the profile's filters would block seccomp(2), so \
                     the second could never be installed; allow seccomp(2) or deny it \
                     with a single action",
        });
    }
    ordered.extend(blocking);
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_number_matches_libc() {
        assert_eq!(i64::from(SYS_SECCOMP), libc::SYS_seccomp);
    }
}
