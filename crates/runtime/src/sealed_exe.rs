//! Running the runtime from an unwritable view of its own binary.
//!
//! A process that enters a container runs the runtime's binary there until
//! it execs the user program. If that program is `#!/proc/self/exe`, the
//! kernel resolves the interpreter to the runtime binary, and a malicious
//! container could then open it for writing and replace the host's runtime
//! (CVE-2019-5736). So `create`, `run` and `exec` first re-execute
//! themselves through a file that cannot be written:
//!
//! 1. preferred: a **read-only bind mount** of /proc/self/exe, opened and then
//!    detached, so /proc/self/exe names a file on a read-only, unreachable
//!    mount (writes fail with EROFS). Costs a few syscalls, no copy.
//! 2. fallback (no mount privilege): a **sealed memfd** copy of the binary.
//!
//! A binary that already lives on a read-only mount, or in a sealed memfd,
//! is safe as it is and is not re-executed.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
const MFD_EXEC: libc::c_uint = 0x10;

/// Whether the current executable cannot be written through /proc/self/exe:
/// it lies on a read-only mount or is a sealed memfd.
pub fn is_protected() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    if nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return true;
    }
    // SAFETY: F_GET_SEALS on a descriptor we own; no memory is passed.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-execute the current program through a protected view of its binary.
/// `scratch` is a directory on which a temporary mount point may be created.
/// Returns only on error.
pub fn reexec_protected(scratch: &Path) -> io::Error {
    let fd = match readonly_view(scratch) {
        Ok(fd) => fd,
        Err(_) => match sealed_copy() {
            Ok(fd) => fd,
            Err(e) => return e,
        },
    };
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
    let empty = CString::default();
    match nix::unistd::execveat(
        Some(fd.as_raw_fd()),
        empty.as_c_str(),
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    ) {
        Err(e) => io::Error::from_raw_os_error(e as i32),
        Ok(never) => match never {},
    }
}

/// Bind /proc/self/exe read-only onto a temporary file, open it, and detach
/// the mount again: the descriptor keeps the read-only mount alive, nothing
/// else can reach it.
fn readonly_view(scratch: &Path) -> io::Result<OwnedFd> {
    let target = scratch.join(format!(".vessel-exe-{}", std::process::id()));
    std::fs::File::create(&target)?;
    let result = (|| {
        let sys = |e: nix::Error| io::Error::from_raw_os_error(e as i32);
        mount(
            Some("/proc/self/exe"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys)?;
        let opened = mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(sys)
        .and_then(|()| {
            let c = CString::new(target.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
            // SAFETY: open of a NUL-terminated path; returns a new descriptor or -1.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the kernel just returned this descriptor; we own it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        });
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        opened
    })();
    let _ = std::fs::remove_file(&target);
    result
}

/// Copy the binary into a memfd and seal it against writes.
fn sealed_copy() -> io::Result<OwnedFd> {
    let src = std::fs::File::open("/proc/self/exe")?;
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
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; we own it.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = src.metadata()?.len() as usize;
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
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short copy of /proc/self/exe",
            ));
        }
        copied += n as usize;
    }
    // SAFETY: F_ADD_SEALS on our memfd; no memory is passed.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}
