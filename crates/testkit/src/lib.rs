//! Helpers shared by vessel's integration tests: the root check every
//! privileged test starts with, an in-memory tar writer, a busybox root
//! filesystem made from the host's static busybox, a real OCI registry on
//! loopback, the microVM tests' guests and an HTTP client for the VMM's API, and the error chain as the CLI
//! prints it. A dev-dependency only.

pub mod api;
pub mod busybox;
pub mod guests;
pub mod registry;
pub mod tarball;

pub use busybox::{busybox_rootfs, Applets};
pub use tarball::Tarball;

/// Tests that run containers or guests fail loudly without root: a skipped
/// test would look like a passing one.
pub fn require_root(what: &str) {
    assert!(nix::unistd::geteuid().is_root(), "{what} needs root");
}

/// `e` and all its causes joined by ": ", as the CLI prints them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
