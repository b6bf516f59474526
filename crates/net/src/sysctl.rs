//! The few kernel settings a bridge network needs, written under /proc/sys.

use std::path::PathBuf;

use crate::error::{NetError, Result};

/// Set `/proc/sys/<key with dots as slashes>` to `value` when it differs.
pub fn set(key: &str, value: &str) -> Result<()> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(NetError::io("write", path))
}

/// Forward IPv4 between interfaces (outbound traffic of containers).
pub fn enable_forwarding() -> Result<()> {
    set("net.ipv4.ip_forward", "1")
}

/// Let packets from 127.0.0.0/8 be routed out of `bridge`: a published
/// port reached on the host's 127.0.0.1 is DNATed to a container, and the
/// kernel drops such "martians" unless route_localnet is on for the
/// outgoing interface.
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    set(&format!("net.ipv4.conf.{bridge}.route_localnet"), "1")
}
