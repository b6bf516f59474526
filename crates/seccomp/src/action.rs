//! OCI action names (`SCMP_ACT_*`) and their errno values -> seccompiler actions.

use oci_spec::runtime::LinuxSeccompAction as OciAction;
use seccompiler::SeccompAction;

use crate::error::SeccompError;

/// errno used when `errnoRet` / `defaultErrnoRet` is absent (runtime spec: EPERM).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// The kernel caps SECCOMP_RET_ERRNO data at MAX_ERRNO; a larger value would silently
/// become another errno, so it is refused instead.
const MAX_ERRNO: u32 = 4095;

/// SECCOMP_RET_TRACE passes 16 bits of data to the tracer; more would be truncated.
const MAX_TRACE_DATA: u32 = 0xffff;

/// Where in the profile an action was written, to name fields in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location {
    /// `defaultAction` / `defaultErrnoRet`.
    Default,
    /// `syscalls[i].action` / `syscalls[i].errnoRet`.
    Syscall(usize),
}

impl Location {
    pub(crate) fn action_field(self) -> String {
        match self {
            Location::Default => "linux.seccomp.defaultAction".to_string(),
            Location::Syscall(i) => format!("linux.seccomp.syscalls[{i}].action"),
        }
    }

    pub(crate) fn errno_field(self) -> String {
        match self {
            Location::Default => "linux.seccomp.defaultErrnoRet".to_string(),
            Location::Syscall(i) => format!("linux.seccomp.syscalls[{i}].errnoRet"),
        }
    }
}

/// Maps one OCI action with its optional errno to the action seccompiler emits.
///
/// `SCMP_ACT_KILL` is libseccomp's old name for killing the thread, so it and
/// `SCMP_ACT_KILL_THREAD` become the same action (and share a filter).
pub(crate) fn resolve(
    action: OciAction,
    errno_ret: Option<u32>,
    at: Location,
) -> Result<SeccompAction, SeccompError> {
    let resolved = match action {
        OciAction::ScmpActErrno => {
            let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
            if errno > MAX_ERRNO {
                return Err(out_of_range(at, errno, "0..=4095"));
            }
            return Ok(SeccompAction::Errno(errno));
        }
        OciAction::ScmpActTrace => {
            let data = errno_ret.unwrap_or(DEFAULT_ERRNO);
            if data > MAX_TRACE_DATA {
                return Err(out_of_range(at, data, "0..=65535"));
            }
            return Ok(SeccompAction::Trace(data));
        }
        OciAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                field: at.action_field(),
                value: action.to_string(),
                reason: "vessel has no seccomp user-notification agent (listenerPath)",
            })
        }
        OciAction::ScmpActKill | OciAction::ScmpActKillThread => SeccompAction::KillThread,
        OciAction::ScmpActKillProcess => SeccompAction::KillProcess,
        OciAction::ScmpActTrap => SeccompAction::Trap,
        OciAction::ScmpActLog => SeccompAction::Log,
        OciAction::ScmpActAllow => SeccompAction::Allow,
    };
    // Only ERRNO and TRACE carry data; the spec says a runtime must fail otherwise.
    if errno_ret.is_some() {
        return Err(SeccompError::ErrnoNotApplicable {
            field: at.errno_field(),
            action: action.to_string(),
        });
    }
    Ok(resolved)
}

fn out_of_range(at: Location, value: u32, range: &'static str) -> SeccompError {
    SeccompError::OutOfRange {
        field: at.errno_field(),
        value: u64::from(value),
        range,
    }
}

/// Human-readable form for error messages and docs, e.g. `SCMP_ACT_ERRNO(38)`.
pub(crate) fn describe(action: &SeccompAction) -> String {
    match action {
        SeccompAction::Allow => "SCMP_ACT_ALLOW".to_string(),
        SeccompAction::Errno(e) => format!("SCMP_ACT_ERRNO({e})"),
        SeccompAction::KillThread => "SCMP_ACT_KILL_THREAD".to_string(),
        SeccompAction::KillProcess => "SCMP_ACT_KILL_PROCESS".to_string(),
        SeccompAction::Log => "SCMP_ACT_LOG".to_string(),
        SeccompAction::Trace(d) => format!("SCMP_ACT_TRACE({d})"),
        SeccompAction::Trap => "SCMP_ACT_TRAP".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(action: OciAction, errno: Option<u32>) -> SeccompAction {
        resolve(action, errno, Location::Syscall(0)).unwrap()
    }

    #[test]
    fn maps_every_supported_action() {
        assert_eq!(ok(OciAction::ScmpActKill, None), SeccompAction::KillThread);
        assert_eq!(
            ok(OciAction::ScmpActKillThread, None),
            SeccompAction::KillThread
        );
        assert_eq!(
            ok(OciAction::ScmpActKillProcess, None),
            SeccompAction::KillProcess
        );
        assert_eq!(ok(OciAction::ScmpActTrap, None), SeccompAction::Trap);
        assert_eq!(ok(OciAction::ScmpActLog, None), SeccompAction::Log);
        assert_eq!(ok(OciAction::ScmpActAllow, None), SeccompAction::Allow);
    }

    #[test]
    fn errno_and_trace_default_to_eperm() {
        assert_eq!(ok(OciAction::ScmpActErrno, None), SeccompAction::Errno(1));
        assert_eq!(ok(OciAction::ScmpActTrace, None), SeccompAction::Trace(1));
        assert_eq!(
            ok(OciAction::ScmpActErrno, Some(38)),
            SeccompAction::Errno(38)
        );
        assert_eq!(
            ok(OciAction::ScmpActTrace, Some(700)),
            SeccompAction::Trace(700)
        );
        // errno 0 is legitimate: the syscall "succeeds" without running.
        assert_eq!(
            ok(OciAction::ScmpActErrno, Some(0)),
            SeccompAction::Errno(0)
        );
    }

    #[test]
    fn errno_out_of_range_names_the_field() {
        let err = resolve(OciAction::ScmpActErrno, Some(70_000), Location::Syscall(4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[4].errnoRet 70000 is out of range (0..=4095)"
        );
        let err = resolve(OciAction::ScmpActTrace, Some(65_536), Location::Default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.defaultErrnoRet 65536 is out of range (0..=65535)"
        );
    }

    #[test]
    fn errno_on_an_action_without_errno_is_an_error() {
        let err = resolve(OciAction::ScmpActAllow, Some(1), Location::Default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.defaultErrnoRet is set, but SCMP_ACT_ALLOW does not return an errno"
        );
    }

    #[test]
    fn notify_is_rejected_by_name() {
        let err = resolve(OciAction::ScmpActNotify, None, Location::Syscall(2)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("linux.seccomp.syscalls[2].action SCMP_ACT_NOTIFY is not supported"),
            "{msg}"
        );
    }
}
