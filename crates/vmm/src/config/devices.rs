//! The virtio devices a microVM gets, in Firecracker's JSON shapes: the
//! config file's `drives`, `network-interfaces`, `vsock`, `entropy` and
//! `balloon` sections and the bodies of `PUT /drives/{id}`,
//! `/network-interfaces/{id}`, `/vsock`, `/entropy`, `/balloon`.
//!
//! Checks that need no host resource are here ([`DevicesConfig::check`]);
//! whether a disk image or tap opens is checked when the device is set up
//! (and by the API when it is configured).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Longest device id (Firecracker's limit).
pub const MAX_ID_LEN: usize = 64;
/// Lowest guest CID: 0-2 are the hypervisor, reserved and the host.
pub const MIN_GUEST_CID: u32 = 3;

/// Errors in a device configuration: the JSON path of the value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid VM config at `{field}`: {reason}")]
pub struct DeviceConfigError {
    /// JSON path (`drives[1].drive_id`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> DeviceConfigError {
    DeviceConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One token bucket (Firecracker's `TokenBucket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Tokens the bucket holds (bytes or operations).
    pub size: u64,
    /// Extra tokens usable once, at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_burst: Option<u64>,
    /// Milliseconds to refill the whole `size`.
    pub refill_time: u64,
}

/// A rate limiter: bandwidth (bytes) and operations buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<TokenBucketConfig>,
    /// Requests (block) or frames (net).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<TokenBucketConfig>,
}

/// Firecracker's block cache types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum CacheType {
    /// Flush requests are not offered to the guest (Firecracker's default).
    #[default]
    Unsafe,
    /// The guest may flush; vessel syncs the image (fdatasync).
    Writeback,
}

/// Firecracker's block I/O engines; vessel's engine is synchronous I/O on
/// the device thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum IoEngine {
    /// Blocking reads and writes (on the device thread, never a vCPU).
    #[default]
    Sync,
    /// io_uring in Firecracker: not supported by vessel yet.
    Async,
}

/// `drives[]` / `PUT /drives/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriveConfig {
    /// Id, also the serial the guest reads with GET_ID (first 20 bytes).
    pub drive_id: String,
    /// Raw disk image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_on_host: Option<PathBuf>,
    /// Adds `root=/dev/vda` (or `root=PARTUUID=…`) to the command line.
    pub is_root_device: bool,
    /// Partition UUID of the root partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partuuid: Option<String>,
    /// Read-only to the guest.
    #[serde(default)]
    pub is_read_only: bool,
    /// Cache type.
    #[serde(default)]
    pub cache_type: CacheType,
    /// I/O engine.
    #[serde(default)]
    pub io_engine: IoEngine,
    /// Rate limiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterConfig>,
    /// vhost-user socket: not supported by vessel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

/// `network-interfaces[]` / `PUT /network-interfaces/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Id.
    pub iface_id: String,
    /// The tap device on the host (opened, or created, by vessel).
    pub host_dev_name: String,
    /// MAC address `xx:xx:xx:xx:xx:xx`; without it the guest picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_mac: Option<String>,
    /// Rate limiter of frames from the host to the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_rate_limiter: Option<RateLimiterConfig>,
    /// Rate limiter of frames from the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_rate_limiter: Option<RateLimiterConfig>,
}

/// `vsock` / `PUT /vsock`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VsockConfig {
    /// Deprecated in Firecracker, accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vsock_id: Option<String>,
    /// The guest's context id (3 or more).
    pub guest_cid: u32,
    /// The host side: vessel listens here; guest connections to port P
    /// go to `uds_path_P`.
    pub uds_path: PathBuf,
}

/// `entropy` / `PUT /entropy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntropyConfig {
    /// Rate limiter of bytes handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterConfig>,
}

/// `balloon` / `PUT /balloon`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonConfig {
    /// Target size of the balloon in MiB.
    pub amount_mib: u32,
    /// Let the guest deflate when it runs out of memory.
    pub deflate_on_oom: bool,
    /// Seconds between statistics requests; 0 turns statistics off.
    #[serde(default)]
    pub stats_polling_interval_s: u16,
}

/// Every virtio device of a microVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesConfig {
    /// Block devices, in the order the guest sees them (`vda`, `vdb`, …;
    /// the root device first).
    pub drives: Vec<DriveConfig>,
    /// Network interfaces.
    pub net: Vec<NetConfig>,
    /// The vsock device.
    pub vsock: Option<VsockConfig>,
    /// The entropy device.
    pub entropy: Option<EntropyConfig>,
    /// The balloon.
    pub balloon: Option<BalloonConfig>,
    /// Use ioeventfd and irqfd where KVM offers them (the default); `false`
    /// takes the fallback path (notifications as MMIO exits, interrupts by
    /// KVM_IRQ_LINE), which tests use to cover it.
    pub kvm_eventfds: bool,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            drives: Vec::new(),
            net: Vec::new(),
            vsock: None,
            entropy: None,
            balloon: None,
            kvm_eventfds: true,
        }
    }
}

/// Firecracker's id rule: 1 to 64 of `[A-Za-z0-9_]`.
pub fn check_id(field: &str, id: &str) -> Result<(), DeviceConfigError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(err(
            field,
            format!("an id has 1 to {MAX_ID_LEN} characters"),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(err(
            field,
            format!("{c:?} in {id:?}: an id has only letters, digits and '_'"),
        ));
    }
    Ok(())
}

/// Parses `xx:xx:xx:xx:xx:xx`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn check_limiter(field: &str, l: &Option<RateLimiterConfig>) -> Result<(), DeviceConfigError> {
    let Some(l) = l else { return Ok(()) };
    for (name, bucket) in [("bandwidth", l.bandwidth), ("ops", l.ops)] {
        if let Some(b) = bucket {
            if b.size > 0 && b.refill_time == 0 {
                return Err(err(
                    format!("{field}.{name}.refill_time"),
                    "a bucket with a size needs a refill time above 0 ms",
                ));
            }
        }
    }
    Ok(())
}

impl DriveConfig {
    /// Checks the values (`field` is the JSON path of this drive).
    pub fn check(&self, field: &str) -> Result<(), DeviceConfigError> {
        check_id(&format!("{field}.drive_id"), &self.drive_id)?;
        if self.socket.is_some() {
            return Err(err(
                format!("{field}.socket"),
                "vhost-user block devices are not supported by vessel",
            ));
        }
        match &self.path_on_host {
            Some(p) if !p.as_os_str().is_empty() => {}
            _ => {
                return Err(err(
                    format!("{field}.path_on_host"),
                    "a drive needs a disk image",
                ))
            }
        }
        if self.io_engine == IoEngine::Async {
            return Err(err(
                format!("{field}.io_engine"),
                "\"Async\" (io_uring) is not supported by vessel yet; use \"Sync\"",
            ));
        }
        if let Some(uuid) = &self.partuuid {
            if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(err(format!("{field}.partuuid"), "not a partition UUID"));
            }
        }
        check_limiter(&format!("{field}.rate_limiter"), &self.rate_limiter)
    }
}

impl NetConfig {
    /// Checks the values.
    pub fn check(&self, field: &str) -> Result<(), DeviceConfigError> {
        check_id(&format!("{field}.iface_id"), &self.iface_id)?;
        // IFNAMSIZ is 16 with the NUL.
        if self.host_dev_name.is_empty()
            || self.host_dev_name.len() > 15
            || self.host_dev_name.contains(['/', ' ', '\0'])
        {
            return Err(err(
                format!("{field}.host_dev_name"),
                format!(
                    "{:?} is not a network interface name (1 to 15 characters, no '/' or space)",
                    self.host_dev_name
                ),
            ));
        }
        if let Some(mac) = &self.guest_mac {
            match parse_mac(mac) {
                Some(m) if m[0] & 1 == 0 => {}
                Some(_) => {
                    return Err(err(
                        format!("{field}.guest_mac"),
                        format!("{mac} is a multicast address"),
                    ))
                }
                None => {
                    return Err(err(
                        format!("{field}.guest_mac"),
                        format!("{mac:?} is not a MAC address (xx:xx:xx:xx:xx:xx)"),
                    ))
                }
            }
        }
        check_limiter(&format!("{field}.rx_rate_limiter"), &self.rx_rate_limiter)?;
        check_limiter(&format!("{field}.tx_rate_limiter"), &self.tx_rate_limiter)
    }
}

impl VsockConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<(), DeviceConfigError> {
        if self.guest_cid < MIN_GUEST_CID {
            return Err(err(
                "vsock.guest_cid",
                format!("{} is reserved; a guest CID is 3 or more", self.guest_cid),
            ));
        }
        if self.uds_path.as_os_str().is_empty() {
            return Err(err("vsock.uds_path", "empty path"));
        }
        // sun_path is 108 bytes; `_PORT` is appended for guest connections.
        if self.uds_path.as_os_str().len() > 96 {
            return Err(err(
                "vsock.uds_path",
                "longer than 96 bytes (a Unix socket path, plus `_PORT`, has to fit in 108)",
            ));
        }
        Ok(())
    }
}

impl BalloonConfig {
    /// Checks the values against a guest of `memory_mib`.
    pub fn check(&self, memory_mib: u64) -> Result<(), DeviceConfigError> {
        if u64::from(self.amount_mib) > memory_mib {
            return Err(err(
                "balloon.amount_mib",
                format!(
                    "{} MiB is more than the guest's {memory_mib} MiB",
                    self.amount_mib
                ),
            ));
        }
        Ok(())
    }
}

impl DevicesConfig {
    /// Checks every device and the rules between them: unique ids, unique
    /// host resources, at most one root device.
    pub fn check(&self, memory_mib: u64) -> Result<(), DeviceConfigError> {
        for (i, d) in self.drives.iter().enumerate() {
            d.check(&format!("drives[{i}]"))?;
            if self.drives[..i].iter().any(|o| o.drive_id == d.drive_id) {
                return Err(err(
                    format!("drives[{i}].drive_id"),
                    format!("{:?} is used by another drive", d.drive_id),
                ));
            }
        }
        if self.drives.iter().filter(|d| d.is_root_device).count() > 1 {
            return Err(err("drives", "more than one root device"));
        }
        for (i, n) in self.net.iter().enumerate() {
            n.check(&format!("network-interfaces[{i}]"))?;
            let earlier = &self.net[..i];
            if earlier.iter().any(|o| o.iface_id == n.iface_id) {
                return Err(err(
                    format!("network-interfaces[{i}].iface_id"),
                    format!("{:?} is used by another interface", n.iface_id),
                ));
            }
            if earlier.iter().any(|o| o.host_dev_name == n.host_dev_name) {
                return Err(err(
                    format!("network-interfaces[{i}].host_dev_name"),
                    format!("{:?} is used by another interface", n.host_dev_name),
                ));
            }
            if n.guest_mac.is_some() && earlier.iter().any(|o| o.guest_mac == n.guest_mac) {
                return Err(err(
                    format!("network-interfaces[{i}].guest_mac"),
                    "used by another interface",
                ));
            }
        }
        if let Some(v) = &self.vsock {
            v.check()?;
        }
        if let Some(e) = &self.entropy {
            check_limiter("entropy.rate_limiter", &e.rate_limiter)?;
        }
        if let Some(b) = &self.balloon {
            b.check(memory_mib)?;
        }
        Ok(())
    }

    /// Adds `drive`, or replaces the one with its id; the root device goes
    /// first, as Firecracker orders them.
    pub fn upsert_drive(&mut self, drive: DriveConfig) {
        self.drives.retain(|d| d.drive_id != drive.drive_id);
        if drive.is_root_device {
            self.drives.insert(0, drive);
        } else {
            self.drives.push(drive);
        }
    }

    /// Adds `net`, or replaces the one with its id.
    pub fn upsert_net(&mut self, net: NetConfig) {
        match self.net.iter_mut().find(|n| n.iface_id == net.iface_id) {
            Some(n) => *n = net,
            None => self.net.push(net),
        }
    }

    /// The kernel command line's root device, if a drive is the root.
    pub fn root_cmdline(&self) -> Option<String> {
        let (index, root) = self
            .drives
            .iter()
            .enumerate()
            .find(|(_, d)| d.is_root_device)?;
        let dev = match &root.partuuid {
            Some(uuid) => format!("root=PARTUUID={uuid}"),
            None => format!("root=/dev/vd{}", block_letters(index)),
        };
        Some(format!(
            "{dev} {}",
            if root.is_read_only { "ro" } else { "rw" }
        ))
    }
}

/// `a`, `b`, … `z`, `aa`, … as Linux names virtio disks.
fn block_letters(mut index: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(id: &str, root: bool) -> DriveConfig {
        DriveConfig {
            drive_id: id.into(),
            path_on_host: Some("/img".into()),
            is_root_device: root,
            partuuid: None,
            is_read_only: false,
            cache_type: CacheType::Unsafe,
            io_engine: IoEngine::Sync,
            rate_limiter: None,
            socket: None,
        }
    }

    #[test]
    fn ids_macs_and_letters() {
        assert!(check_id("x", "rootfs_1").is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(check_id("x", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_mac("06:00:AC:10:00:02"),
            Some([6, 0, 0xac, 0x10, 0, 2])
        );
        for bad in [
            "06:00:ac:10:00",
            "06:00:ac:10:00:02:03",
            "6:0:ac:10:0:2",
            "zz:00:00:00:00:00",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(block_letters(0), "a");
        assert_eq!(block_letters(25), "z");
        assert_eq!(block_letters(26), "aa");
    }

    #[test]
    fn root_goes_first_and_only_once() {
        let mut d = DevicesConfig::default();
        d.upsert_drive(drive("data", false));
        d.upsert_drive(drive("rootfs", true));
        assert_eq!(d.drives[0].drive_id, "rootfs");
        assert_eq!(d.root_cmdline().as_deref(), Some("root=/dev/vda rw"));
        d.upsert_drive(drive("data", false));
        assert_eq!(d.drives.len(), 2);
        assert!(d.check(128).is_ok());
        d.drives.push(drive("other", true));
        assert_eq!(
            d.check(128).unwrap_err().reason,
            "more than one root device"
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut d = DevicesConfig::default();
        d.drives.push(drive("a", false));
        d.drives.push(drive("a", false));
        assert_eq!(d.check(128).unwrap_err().field, "drives[1].drive_id");
        let mut d = DevicesConfig::default();
        let mut bad = drive("a", false);
        bad.rate_limiter = Some(RateLimiterConfig {
            bandwidth: Some(TokenBucketConfig {
                size: 10,
                one_time_burst: None,
                refill_time: 0,
            }),
            ops: None,
        });
        d.drives.push(bad);
        assert_eq!(
            d.check(128).unwrap_err().field,
            "drives[0].rate_limiter.bandwidth.refill_time"
        );
        let d = DevicesConfig {
            vsock: Some(VsockConfig {
                vsock_id: None,
                guest_cid: 2,
                uds_path: "/tmp/v.sock".into(),
            }),
            ..DevicesConfig::default()
        };
        assert_eq!(d.check(128).unwrap_err().field, "vsock.guest_cid");
        let d = DevicesConfig {
            balloon: Some(BalloonConfig {
                amount_mib: 256,
                deflate_on_oom: false,
                stats_polling_interval_s: 0,
            }),
            ..DevicesConfig::default()
        };
        assert_eq!(d.check(128).unwrap_err().field, "balloon.amount_mib");
        let mut d = DevicesConfig::default();
        d.net.push(NetConfig {
            iface_id: "eth0".into(),
            host_dev_name: "tap0".into(),
            guest_mac: Some("01:00:00:00:00:01".into()),
            rx_rate_limiter: None,
            tx_rate_limiter: None,
        });
        assert!(d.check(128).unwrap_err().reason.contains("multicast"));
    }
}
