//! File descriptor hygiene: nothing of the runtime's may leak into a container.

use std::os::fd::RawFd;

/// Mark every descriptor from `first` upwards close-on-exec, so that only
/// stdio (and the descriptors below `first` the caller chose to pass on)
/// reach the container's process.
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: close_range only changes flags of descriptors of this process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk /proc/self/fd instead.
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| nix::Error::last())?;
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on a descriptor number; a stale number just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Clear close-on-exec on `fd` so that it survives execve.
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: fcntl on a descriptor number changes only its flags.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if ret < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}
