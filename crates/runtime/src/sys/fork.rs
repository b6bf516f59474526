//! Process creation for the runtime's single-threaded setup path.

use nix::unistd::Pid;

/// Result of a fork as seen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// We are the parent; the child's pid.
    Parent(Pid),
    /// We are the child.
    Child,
}

/// Fork the calling process.
///
/// The runtime is single-threaded wherever it forks (the CLI never starts
/// threads), so the child may allocate and run ordinary Rust code.
pub fn fork() -> nix::Result<Forked> {
    // SAFETY: the runtime process is single-threaded when it forks (documented
    // invariant of the CLI), so no lock can be held by a thread that does not
    // exist in the child.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Leave a forked child immediately, without running destructors or atexit
/// handlers that belong to the parent.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}
