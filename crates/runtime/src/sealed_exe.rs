//! Running the runtime from a sealed in-memory copy of itself.
//!
//! A process that enters a container runs the runtime's binary there until
//! it execs the user program. If that program is `#!/proc/self/exe`, the
//! kernel resolves the interpreter to the runtime binary, and a malicious
//! container could then open it for writing and replace the host's runtime
//! (CVE-2019-5736). A sealed memfd copy makes /proc/self/exe point to an
//! immutable anonymous file instead.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
const MFD_EXEC: libc::c_uint = 0x10;

/// Whether the current executable is a sealed memfd.
pub fn is_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on a descriptor we own; no memory is passed.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-execute the current program from a sealed memfd copy, unless it is
/// already running from one. Returns only on error.
pub fn reexec_sealed() -> io::Error {
    let src = match std::fs::File::open("/proc/self/exe") {
        Ok(f) => f,
        Err(e) => return e,
    };
    let name = CString::new("vessel-runtime").expect("static");
    // SAFETY: memfd_create with a valid name; returns a new descriptor or -1.
    let mut fd = unsafe {
        libc::memfd_create(
            name.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC,
        )
    };
    if fd < 0 {
        // Kernels before 6.3 do not know MFD_EXEC.
        // SAFETY: as above.
        fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
    }
    if fd < 0 {
        return io::Error::last_os_error();
    }
    // SAFETY: the kernel just returned this descriptor; we own it.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = match src.metadata() {
        Ok(m) => m.len() as usize,
        Err(e) => return e,
    };
    let mut copied = 0usize;
    while copied < len {
        // SAFETY: sendfile between two descriptors we own, with a null offset pointer.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                len - copied,
            )
        };
        if n <= 0 {
            return if n == 0 {
                io::Error::new(io::ErrorKind::UnexpectedEof, "short copy of /proc/self/exe")
            } else {
                io::Error::last_os_error()
            };
        }
        copied += n as usize;
    }
    // SAFETY: F_ADD_SEALS on our memfd; no memory is passed.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return io::Error::last_os_error();
    }
    let to_c = |s: OsString| CString::new(s.into_vec()).unwrap_or_default();
    let args: Vec<CString> = std::env::args_os().map(to_c).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    match nix::unistd::fexecve(memfd.as_raw_fd(), &args, &env) {
        Err(e) => io::Error::from_raw_os_error(e as i32),
        Ok(never) => match never {},
    }
}
