//! Asynchronous teardown: the kernel's destruction of a finished VM runs in
//! a short-lived helper task instead of in the VMM's own exit.
//!
//! Why: when the last descriptor of a KVM VM is closed, KVM destroys it
//! synchronously, in the `close` (or in the exit of the process holding it).
//! With the in-kernel PIT most of that is sleeping: turning the PIT's
//! reinjection off waits for a full SRCU grace period, its I/O devices are
//! unregistered behind two more, and its kthread is stopped. Measured here
//! (BENCHMARKS.md, "Where vessel's exit time goes"): 16–17 ms per VM, more
//! than everything else from `vessel vm run` to the guest's power-off. The
//! guest has ended by then; the caller waits for nothing it needs.
//!
//! How: [`hand_off`] clones a task that shares the VMM's memory (CLONE_VM,
//! so guest memory is also unmapped by the helper, not by the VMM's exit)
//! and gets its own copy of the descriptor table. The helper closes every
//! descriptor except the VM's (taps, disk images, sockets, stdio: nothing a
//! caller could find still busy after the VMM is gone) and tells the VMM so
//! by closing the write end of a pipe. Then it waits for the VMM to let go
//! ([`Release`], normally the VMM's exit), closes the VM's descriptor —
//! KVM's teardown runs there, as the last reference — and exits. The VMM's
//! own closes of the VM are not the last ones and return at once. QEMU's
//! `-run-with async-teardown=on` does the same for the same reason.
//!
//! What a caller sees: the VMM exits as soon as its own work is done; the
//! VM's kernel objects and guest memory are released by the helper a few
//! milliseconds later, inside the same cgroup (its CPU and memory stay
//! accounted there until then). If the VMM is killed before it hands off,
//! the kernel tears the VM down in the VMM's exit as always.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Errors handing a VM's teardown to a helper (the caller then simply
/// closes the VM itself).
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// The pipe the helper signals on cannot be made.
    #[error("Cannot create the teardown helper's pipe")]
    Pipe(#[source] Errno),
    /// The helper's stack cannot be mapped.
    #[error("Cannot map the teardown helper's stack")]
    Stack(#[source] Errno),
    /// clone(2) failed.
    #[error("Cannot start the teardown helper")]
    Clone(#[source] Errno),
    /// Reading the helper's signal failed.
    #[error("Cannot wait for the teardown helper")]
    Wait(#[source] Errno),
}

/// The flags of the helper's clone(2): shared memory, nothing else shared
/// (its own descriptor table copy, its own signal handlers), and no exit
/// signal (the VMM does not wait for it; once the VMM is gone its new
/// parent reaps it). The seccomp filter of the VMM thread allows clone
/// with exactly these flags (crate::seccomp).
pub const HELPER_CLONE_FLAGS: libc::c_int = libc::CLONE_VM;

/// Stack of the helper: it only makes a few system calls.
const HELPER_STACK: usize = 64 * 1024;

/// What the helper reads when it starts, before it closes anything.
#[derive(Clone, Copy)]
#[repr(C)]
struct HelperArgs {
    /// The VM's descriptor: closed last.
    vm: RawFd,
    /// The pipe's write end: closed once everything else is.
    done: RawFd,
    /// The read end of the pipe the VMM holds open until it lets go.
    release: RawFd,
}

/// The VMM's side of a handed-off teardown: while it is open the helper
/// keeps the VM alive. Drop it once the VMM holds no descriptor of the VM
/// any more (or keep it until the process exits, with
/// [`Release::keep_until_exit`]); then the helper's close is the last one
/// and the teardown runs there.
#[derive(Debug)]
#[must_use = "dropping the Release at once lets the helper close the VM before the VMM does"]
pub struct Release(OwnedFd);

impl Release {
    /// Lets go only when this process exits (which closes the descriptor):
    /// whatever VM descriptor a thread of the VMM still holds by then, the
    /// helper's is the last.
    pub fn keep_until_exit(self) {
        std::mem::forget(self.0);
    }
}

/// Hands the destruction of the VM whose descriptor is `vm_fd` to a helper
/// task (see the module documentation). Returns once the helper has closed
/// every other descriptor it inherited; the caller then drops the VM as
/// usual and, after that, the returned [`Release`].
///
/// Call it after every vCPU has stopped. Meant for a VMM process that exits
/// right after: the helper is reparented and reaped once the caller's
/// process ends (until then it stays a zombie child of the process).
pub fn hand_off(vm_fd: RawFd) -> Result<Release, TeardownError> {
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(TeardownError::Pipe);
    let (done_read, done_write) = pipe()?;
    let (release_read, release_write) = pipe()?;
    let stack_top = map_stack()?;
    let args = HelperArgs {
        vm: vm_fd,
        done: done_write.as_raw_fd(),
        release: release_read.as_raw_fd(),
    };
    // SAFETY: `stack_top` is the end of a fresh private mapping of
    // HELPER_STACK bytes that nothing else uses and that is never unmapped
    // (it goes with the address space); the stack grows down from there. `helper` only
    // makes raw system calls (no allocation, no lock, no Rust runtime), so
    // running it in this address space beside the VMM's threads is sound.
    // `args` outlives the helper's read of it: the helper copies it first,
    // and this function returns only after the helper has closed its copy
    // of `done_write`, which happens after that read.
    let pid = unsafe {
        libc::clone(
            helper,
            stack_top.cast(),
            HELPER_CLONE_FLAGS,
            std::ptr::addr_of!(args).cast_mut().cast(),
        )
    };
    if pid < 0 {
        return Err(TeardownError::Clone(Errno::last()));
    }
    drop(done_write);
    drop(release_read);
    wait_for_eof(&done_read)?;
    Ok(Release(release_write))
}

/// The helper's stack: an anonymous mapping left to the address space.
/// Returns its top (the stack grows down).
fn map_stack() -> Result<*mut libc::c_void, TeardownError> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choice touches no existing memory.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            HELPER_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(TeardownError::Stack(Errno::last()));
    }
    Ok(addr.cast::<u8>().wrapping_add(HELPER_STACK).cast())
}

/// Blocks until every copy of the pipe's write end is closed: the helper
/// has closed everything but the VM (or has died, which closes all).
fn wait_for_eof(read_end: &OwnedFd) -> Result<(), TeardownError> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(read_end.as_raw_fd(), &mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(TeardownError::Wait(e)),
        }
    }
}

/// The helper task. Raw system calls only (see `hand_off`); its errors
/// cannot be reported and need not be: whatever it fails to close, its
/// exit closes.
extern "C" fn helper(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the HelperArgs of `hand_off`, alive until
    // this task closes its copy of `done` (below).
    let args = unsafe { *arg.cast::<HelperArgs>() };
    let mut keep = [args.vm, args.done, args.release];
    keep.sort_unstable();
    let closed_all = close_range(0, keep[0] - 1)
        && close_range(keep[0] + 1, keep[1] - 1)
        && close_range(keep[1] + 1, keep[2] - 1)
        && close_range(keep[2] + 1, RawFd::MAX);
    if closed_all {
        close(args.done);
        wait_for_release(args.release);
        close(args.vm);
    }
    // Without close_range (Linux before 5.9) the exit below closes the
    // descriptors in order, the VM's among them: the VMM then waits for
    // the teardown as it would without the helper.
    0
}

/// close_range(2) of `first..=last`, which may be empty; false if the
/// kernel lacks the call.
fn close_range(first: RawFd, last: RawFd) -> bool {
    if first > last || last < 0 {
        return true;
    }
    // SAFETY: closing descriptors of this task's own table copy; no Rust
    // object in this task owns them.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
    ret == 0
}

/// Blocks until the VMM closes its end of the release pipe (or exits).
fn wait_for_release(fd: RawFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a local of this task's stack.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, std::ptr::addr_of_mut!(byte), 1usize) };
        // 0: EOF, the VMM let go. An error other than EINTR (there is none
        // for a valid pipe) ends the wait too: the VM is closed either way.
        if n == 0 || (n < 0 && Errno::last() != Errno::EINTR) {
            return;
        }
    }
}

fn close(fd: RawFd) {
    // SAFETY: as in `close_range`: this task's copy of the descriptor.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The helper gets copies of the caller's descriptors and closes them
    /// before `hand_off` returns: a pipe whose write end the caller closes
    /// right after reads EOF, though the helper copied it too. The kept
    /// descriptor (standing for the VM) stays open in the helper until the
    /// caller drops the Release.
    #[test]
    fn helper_closes_its_copies_then_the_kept_one_after_release() {
        use nix::fcntl::OFlag;
        // Non-blocking: a helper that kept a copy makes the read fail with
        // EAGAIN instead of hanging the test.
        let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let (r, w) = nix::unistd::pipe2(flags).unwrap();
        let (keep_r, keep_w) = nix::unistd::pipe2(flags).unwrap();
        let release = hand_off(keep_w.as_fd().as_raw_fd()).unwrap();
        drop(w);
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf), Ok(0));
        // The caller's copy of the kept end goes; the helper's stays.
        drop(keep_w);
        assert_eq!(
            nix::unistd::read(keep_r.as_raw_fd(), &mut buf),
            Err(Errno::EAGAIN)
        );
        // Released: the helper closes its copy (soon, not at once).
        drop(release);
        let mut fds = [nix::poll::PollFd::new(
            keep_r.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(ready, 1, "the helper did not close the kept descriptor");
        assert_eq!(nix::unistd::read(keep_r.as_raw_fd(), &mut buf), Ok(0));
    }
}
