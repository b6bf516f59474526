//! `linux.resources.unified`: raw cgroup v2 files and values, written as given.
//!
//! Keys are file names in the container's cgroup; they are checked so that one cannot name a
//! file elsewhere, and the controller a key belongs to (`memory` for `memory.high`) must be
//! available. Unified values are written after every other resource, so they win where both
//! set the same file (as the spec wants).

use oci_spec::runtime::LinuxResources;

use super::controllers::Cgroup;
use crate::error::Result;
use crate::plan::WritePlan;
use crate::resource_values::invalid;

/// Plans `linux.resources.unified`, in key order for a stable sequence.
pub(super) fn plan(
    cgroup: &Cgroup,
    resources: &LinuxResources,
    plan: &mut WritePlan,
) -> Result<()> {
    let Some(unified) = resources.unified() else {
        return Ok(());
    };
    let mut entries: Vec<_> = unified.iter().collect();
    entries.sort();
    for (key, _) in &entries {
        check_key(key)?;
    }
    for (key, value) in entries {
        let resource = format!("linux.resources.unified {key:?}");
        let controller = key.split('.').next().unwrap_or_default();
        // cgroup.* files belong to the core, which is always there.
        let dir = if controller == "cgroup" {
            cgroup.dir()
        } else {
            cgroup.require(controller, &resource)?
        };
        plan.set(dir, key, value);
    }
    Ok(())
}

/// A key must be one plain file name of the form `<controller>.<file>`.
fn check_key(key: &str) -> Result<()> {
    let resource = format!("linux.resources.unified key {key:?}");
    if key.contains('/') || key.contains("..") {
        return Err(invalid(
            resource,
            "'/' and '..' are not allowed in a file name",
        ));
    }
    let well_formed = key
        .split_once('.')
        .is_some_and(|(controller, file)| !controller.is_empty() && !file.is_empty())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !well_formed {
        return Err(invalid(
            resource,
            "expected a cgroup file name such as memory.high",
        ));
    }
    Ok(())
}
