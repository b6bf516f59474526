//! v2 device filter: `linux.resources.devices` compiled into an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` and attached to the container's cgroup.
//!
//! The kernel runs the program on every device access (open, mknod) by a process of the
//! cgroup, with a `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`:
//! the low 16 bits of `access_type` are the device type (block 1, char 2) and the high 16
//! bits the access (mknod 1, read 2, write 4). The program returns 1 to allow and 0 to deny
//! (the access then fails with EPERM).
//!
//! Rules are read like the v1 devices controller reads them: the **last** matching rule
//! decides. So the program tests the rules from the last to the first and returns at the
//! first match. A rule over everything (type `a`, no numbers, `rwm`) matches every access,
//! so rules before the last such rule can never decide and are left out; that rule's
//! verdict becomes the program's default. Without one, the default is allow: the program
//! then only narrows what the parent cgroups allow, as a v1 child cgroup starts with its
//! parent's list. The usual OCI list starts with a deny-all rule, so the default is deny.
//!
//! Access: an allow rule matches when every requested access is among its letters (`r`
//! does not allow a read-write open); a deny rule matches when any requested access is
//! among its letters (`w` denies a read-write open). Type `u` is a character device; type
//! `p` (FIFO) is refused, as on v1.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::bpf_insn::{Insn, R0, R1, R2, R3, R4, R5};
use super::bpf_sys::{self, BPF_F_ALLOW_MULTI};
use crate::error::{CgroupError, Result};
use crate::resource_values::invalid;

/// Device programs call no helper, so any license string loads; this is the project's.
const LICENSE: &CStr = c"Apache-2.0";
/// The program's name, as `bpftool prog` shows it.
const PROG_NAME: &str = "vessel_devices";

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One checked OCI device rule; `None` is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    allow: bool,
    dev_type: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: u8,
}

impl DeviceRule {
    /// Matches every access to every device.
    fn is_everything(&self) -> bool {
        self.dev_type.is_none()
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

/// Checks every rule of `linux.resources.devices`; errors name the rule and field.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let field = |name: &str| format!("linux.resources.devices[{index}].{name}");
            let dev_type = match rule.typ().unwrap_or_default() {
                LinuxDeviceType::A => None,
                LinuxDeviceType::B => Some(DEV_BLOCK),
                LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
                LinuxDeviceType::P => {
                    return Err(invalid(
                        field("type"),
                        "\"p\" (FIFO) cannot be controlled by the devices cgroup",
                    ))
                }
            };
            Ok(DeviceRule {
                allow: rule.allow(),
                dev_type,
                major: device_number(&field("major"), rule.major())?,
                minor: device_number(&field("minor"), rule.minor())?,
                access: access_bits(&field("access"), rule.access().as_deref())?,
            })
        })
        .collect()
}

/// A rule number: missing or -1 is the wildcard; real numbers fit in 32 bits (the kernel
/// uses 12 bits for majors and 20 for minors).
fn device_number(field: &str, value: Option<i64>) -> Result<Option<i32>> {
    match value {
        None | Some(-1) => Ok(None),
        Some(number) => i32::try_from(number)
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    field,
                    format!(
                        "{number} is out of range (0 to {}, or -1 for any)",
                        i32::MAX
                    ),
                )
            }),
    }
}

/// The access letters as `BPF_DEVCG_ACC_*` bits; none given means all.
fn access_bits(field: &str, access: Option<&str>) -> Result<u8> {
    let access = access.unwrap_or("");
    if access.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut bits = 0;
    for letter in access.chars() {
        let bit = match letter {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        };
        if bit == 0 || bits & bit != 0 {
            return Err(invalid(
                field,
                format!("{access:?} must be letters among r, w and m, each at most once"),
            ));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// The program for `rules` (see the module documentation for its meaning).
///
/// ```text
/// r2 = ctx->access_type & 0xffff   (device type)
/// r3 = ctx->access_type >> 16      (requested access)
/// r4 = ctx->major
/// r5 = ctx->minor
/// per rule, last first:  test type, major, minor, access; each failed test jumps to the
///                        next rule; all passed: r0 = verdict; exit
/// r0 = default; exit
/// ```
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let (default, deciding) = match rules.iter().rposition(DeviceRule::is_everything) {
        Some(last) => (rules[last].allow, &rules[last + 1..]),
        None => (true, rules),
    };
    let mut insns = vec![
        Insn::load_u32(R2, R1, 0),
        Insn::and32(R2, 0xffff),
        Insn::load_u32(R3, R1, 0),
        Insn::rsh32(R3, 16),
        Insn::load_u32(R4, R1, 4),
        Insn::load_u32(R5, R1, 8),
    ];
    for rule in deciding.iter().rev() {
        insns.extend(rule_block(rule));
    }
    insns.push(Insn::mov64(R0, i32::from(default)));
    insns.push(Insn::exit());
    insns
}

/// The tests of one rule, ending with its verdict; a failed test jumps past the block.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // Jump offsets are filled in once the block's length is known.
    let mut block = Vec::new();
    if let Some(dev_type) = rule.dev_type {
        block.push(Insn::jne(R2, dev_type, 0));
    }
    if let Some(major) = rule.major {
        block.push(Insn::jne(R4, major, 0));
    }
    if let Some(minor) = rule.minor {
        block.push(Insn::jne(R5, minor, 0));
    }
    if rule.access != ACC_ALL {
        if rule.allow {
            // Skip when anything outside the allowed letters is requested.
            block.push(Insn::jset(R3, i32::from(!rule.access) & 0xffff, 0));
        } else {
            // Skip when none of the denied letters is requested. (r1, the context pointer,
            // is no longer needed.)
            block.push(Insn::mov32(R1, R3));
            block.push(Insn::and32(R1, i32::from(rule.access)));
            block.push(Insn::jeq(R1, 0, 0));
        }
    }
    block.push(Insn::mov64(R0, i32::from(rule.allow)));
    block.push(Insn::exit());
    let len = block.len();
    for (index, insn) in block.iter_mut().enumerate() {
        if insn.is_jump() {
            // A block has at most 8 instructions.
            insn.off = i16::try_from(len - index - 1).unwrap_or(i16::MAX);
        }
    }
    block
}

/// A device filter checked and compiled from `linux.resources.devices`, not loaded yet.
#[derive(Debug)]
pub(crate) struct DeviceFilter {
    insns: Vec<Insn>,
}

/// The filter for `resources`, or `None` when there are no device rules (then, as on v1,
/// nothing changes: a filter attached before stays).
pub(crate) fn plan(resources: &LinuxResources) -> Result<Option<DeviceFilter>> {
    let rules = resources.devices().as_deref().unwrap_or_default();
    if rules.is_empty() {
        return Ok(None);
    }
    let rules = parse_rules(rules)?;
    Ok(Some(DeviceFilter {
        insns: program(&rules),
    }))
}

impl DeviceFilter {
    #[cfg(test)]
    pub(crate) fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// Loads the program into the kernel (the verifier checks it); nothing is attached yet.
    pub(crate) fn load(&self, dir: &Path) -> Result<LoadedFilter> {
        let fd =
            bpf_sys::load_device_program(&self.insns, LICENSE, PROG_NAME).map_err(|error| {
                CgroupError::DeviceFilter {
                    operation: "load".to_string(),
                    path: dir.to_path_buf(),
                    detail: if error.log.is_empty() {
                        String::new()
                    } else {
                        format!(" (verifier log: {})", error.log)
                    },
                    source: error.source,
                }
            })?;
        Ok(LoadedFilter { fd })
    }
}

/// A device program loaded in the kernel.
#[derive(Debug)]
pub(crate) struct LoadedFilter {
    fd: OwnedFd,
}

impl LoadedFilter {
    /// Makes this program the cgroup's device filter: attaches it (`BPF_F_ALLOW_MULTI`),
    /// then detaches the device programs that were attached to the cgroup before, such as
    /// the one of an earlier `apply`. In between both run and both must allow an access,
    /// so the cgroup is never less restricted than either filter.
    ///
    /// The old programs are found with `BPF_PROG_QUERY` rather than kept by this process,
    /// because `update` runs in another process than `create`. Only programs attached
    /// directly to this cgroup are touched, and vessel owns that cgroup.
    pub(crate) fn attach(&self, dir: &Path) -> Result<()> {
        let failed = |operation: &str, source: io::Error| CgroupError::DeviceFilter {
            operation: operation.to_string(),
            path: dir.to_path_buf(),
            detail: String::new(),
            source,
        };
        let cgroup: OwnedFd = File::open(dir)
            .map_err(|e| failed("open the cgroup directory for", e))?
            .into();
        let old = bpf_sys::query(&cgroup).map_err(|e| failed("list the programs of", e))?;
        bpf_sys::attach(&cgroup, &self.fd, BPF_F_ALLOW_MULTI).map_err(|e| failed("attach", e))?;
        for id in old {
            let prog = match bpf_sys::prog_fd_by_id(id) {
                Ok(prog) => prog,
                // Unloaded since the query: nothing left to detach.
                Err(error) if error.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(error) => return Err(failed("open an earlier program of", error)),
            };
            match bpf_sys::detach(&cgroup, &prog) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(error) => return Err(failed("detach an earlier program of", error)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "devices_bpf_tests.rs"]
mod tests;
