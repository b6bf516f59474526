//! v1 devices controller: the device allow/deny list.
//!
//! Each OCI rule becomes one write, in order, to `devices.allow` or `devices.deny`. A rule
//! denying everything (`{"allow": false, "access": "rwm"}`, the usual first rule) is written as
//! `a` to `devices.deny`, which empties the list; the runtime then allows its own default
//! devices with the rules that follow (this crate adds none of its own).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::hierarchy::ControllerDirs;
use crate::error::Result;
use crate::plan::WritePlan;
use crate::resource_values::invalid;

const RESOURCE: &str = "linux.resources.devices";

/// Plans `linux.resources.devices`.
pub(super) fn plan(
    dirs: &ControllerDirs,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let rules = resources.devices().as_deref().unwrap_or_default();
    if rules.is_empty() {
        return Ok(());
    }
    // Check every rule before planning any, so a bad one changes nothing.
    let lines = rules
        .iter()
        .map(|rule| Ok((rule.allow(), rule_lines(rule)?)))
        .collect::<Result<Vec<_>>>()?;
    let dir = dirs.require("devices", RESOURCE)?;
    for (allow, lines) in lines {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        for line in lines {
            plan.command(dir, file, line);
        }
    }
    Ok(())
}

/// The kernel lines for one OCI rule: `type major:minor access`, `*` for a wildcard number.
pub(crate) fn rule_lines(rule: &LinuxDeviceCgroup) -> Result<Vec<String>> {
    let major = device_number("major", rule.major())?;
    let minor = device_number("minor", rule.minor())?;
    let access = access(rule.access().as_deref())?;
    let lines = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A if major == "*" && minor == "*" && access == "rwm" => {
            vec!["a".to_string()]
        }
        // The kernel reads "a ..." as "everything" whatever follows, so a rule for all types
        // that is narrower than that is spelt out for both device types.
        LinuxDeviceType::A => vec![
            format!("c {major}:{minor} {access}"),
            format!("b {major}:{minor} {access}"),
        ],
        // 'u' (unbuffered character device) is a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => vec![format!("c {major}:{minor} {access}")],
        LinuxDeviceType::B => vec![format!("b {major}:{minor} {access}")],
        LinuxDeviceType::P => {
            return Err(invalid(
                RESOURCE,
                "type \"p\" (FIFO) cannot be controlled by the devices cgroup",
            ))
        }
    };
    Ok(lines)
}

/// A rule number: missing or -1 is the wildcard.
fn device_number(name: &str, value: Option<i64>) -> Result<String> {
    match value {
        None | Some(-1) => Ok("*".to_string()),
        Some(number) if number >= 0 => Ok(number.to_string()),
        Some(number) => Err(invalid(
            RESOURCE,
            format!("{name} {number} is negative (-1 is the wildcard)"),
        )),
    }
}

/// The access letters in the kernel's order; none given means all (`rwm`).
fn access(access: Option<&str>) -> Result<String> {
    let access = access.unwrap_or("");
    if access.is_empty() {
        return Ok("rwm".to_string());
    }
    let valid = access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && access.len() <= 3
        && !["r", "w", "m"]
            .iter()
            .any(|c| access.matches(c).count() > 1);
    if !valid {
        return Err(invalid(
            RESOURCE,
            format!("access {access:?} must be letters among r, w and m, each at most once"),
        ));
    }
    Ok(['r', 'w', 'm']
        .into_iter()
        .filter(|&c| access.contains(c))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> LinuxDeviceCgroup {
        let mut builder = LinuxDeviceCgroupBuilder::default().allow(true);
        if let Some(typ) = typ {
            builder = builder.typ(typ);
        }
        if let Some(major) = major {
            builder = builder.major(major);
        }
        if let Some(minor) = minor {
            builder = builder.minor(minor);
        }
        if let Some(access) = access {
            builder = builder.access(access);
        }
        builder.build().unwrap()
    }

    #[test]
    fn formats_rules_like_the_kernel_expects() {
        let cases = [
            (rule(None, None, None, None), vec!["a"]),
            (
                rule(Some(LinuxDeviceType::A), Some(-1), Some(-1), Some("mwr")),
                vec!["a"],
            ),
            (
                rule(Some(LinuxDeviceType::C), Some(1), Some(3), Some("rwm")),
                vec!["c 1:3 rwm"],
            ),
            (
                rule(Some(LinuxDeviceType::U), Some(5), None, Some("wr")),
                vec!["c 5:* rw"],
            ),
            (
                rule(Some(LinuxDeviceType::B), Some(-1), Some(0), Some("m")),
                vec!["b *:0 m"],
            ),
            (
                rule(Some(LinuxDeviceType::A), Some(136), None, Some("rw")),
                vec!["c 136:* rw", "b 136:* rw"],
            ),
            (
                rule(None, None, None, Some("r")),
                vec!["c *:* r", "b *:* r"],
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(rule_lines(&rule).unwrap(), expected, "{rule:?}");
        }
    }

    #[test]
    fn rejects_bad_rules() {
        let bad = [
            rule(Some(LinuxDeviceType::C), Some(-2), None, None),
            rule(Some(LinuxDeviceType::C), None, Some(-5), None),
            rule(Some(LinuxDeviceType::C), None, None, Some("rx")),
            rule(Some(LinuxDeviceType::C), None, None, Some("rr")),
            rule(Some(LinuxDeviceType::C), None, None, Some("rwm\nc")),
            rule(Some(LinuxDeviceType::P), None, None, None),
        ];
        for rule in bad {
            let message = rule_lines(&rule).unwrap_err().to_string();
            assert!(message.contains(RESOURCE), "{message}");
        }
    }
}
