//! The v1 hierarchies mounted under the cgroup root, and the container's directory in each.
//!
//! Hierarchies are found from the directory names under the root, the way they are mounted by
//! systemd and cgroupfs-mount: `memory`, `cpu,cpuacct` (often with `cpu` and `cpuacct`
//! symlinks to it), `systemd` for the `name=systemd` hierarchy, and `unified` for a hybrid
//! host's cgroup2 tree, which holds no v1 controller but keeps a container's processes
//! grouped for tools that read it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::path::CgroupPath;

/// Directory name of a hybrid host's cgroup2 tree.
const UNIFIED_DIR: &str = "unified";
/// Directory name of systemd's named hierarchy.
const SYSTEMD_DIR: &str = "systemd";

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hierarchy {
    /// Where the hierarchy is mounted (symlinks resolved).
    pub(super) mount: PathBuf,
    /// The controllers bound to it (`name=systemd` for the named one, none for `unified`).
    pub(super) controllers: BTreeSet<String>,
}

/// All hierarchies under a root.
#[derive(Debug, Clone, Default)]
pub(super) struct Hierarchies(Vec<Hierarchy>);

impl Hierarchies {
    /// Lists the hierarchies under `root`; symlinks to a hierarchy (`cpu` -> `cpu,cpuacct`)
    /// add their name as a controller but not a second hierarchy.
    pub(super) fn discover(root: &Path) -> Result<Self> {
        let list_error = |source| CgroupError::ReadDir {
            path: root.to_path_buf(),
            source,
        };
        let mut by_mount: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        // Resolved once: a directory entry's own path is then canonical as it
        // is, and only symlinks need resolving (this runs several times per
        // container start, so the ~4 readlinks per entry of canonicalize count).
        let canonical_root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        for entry in fs::read_dir(root).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let file_type = entry.file_type().map_err(list_error)?;
            let mount = if file_type.is_dir() {
                canonical_root.join(&name)
            } else if file_type.is_symlink() {
                match fs::canonicalize(entry.path()) {
                    Ok(target) if target.is_dir() => target,
                    _ => continue,
                }
            } else {
                continue;
            };
            let controllers = by_mount.entry(mount).or_default();
            match name.as_str() {
                UNIFIED_DIR => {}
                SYSTEMD_DIR => {
                    controllers.insert("name=systemd".to_string());
                }
                _ => controllers.extend(name.split(',').map(str::to_string)),
            }
        }
        Ok(Self(
            by_mount
                .into_iter()
                .map(|(mount, controllers)| Hierarchy { mount, controllers })
                .collect(),
        ))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Hierarchy> {
        self.0.iter()
    }

    /// The container's directory in each hierarchy, by controller.
    pub(super) fn cgroup_dirs(&self, path: &CgroupPath) -> ControllerDirs {
        let mut by_controller = BTreeMap::new();
        for hierarchy in &self.0 {
            for controller in &hierarchy.controllers {
                by_controller.insert(controller.clone(), path.in_hierarchy(&hierarchy.mount));
            }
        }
        ControllerDirs { by_controller }
    }
}

/// The container's cgroup directory for each mounted controller.
#[derive(Debug, Clone)]
pub(super) struct ControllerDirs {
    by_controller: BTreeMap<String, PathBuf>,
}

impl ControllerDirs {
    /// The directory for `controller`, if its hierarchy is mounted.
    pub(super) fn get(&self, controller: &str) -> Option<&Path> {
        self.by_controller.get(controller).map(PathBuf::as_path)
    }

    /// The directory for `controller`, which `resource` needs.
    pub(super) fn require(&self, controller: &str, resource: &str) -> Result<&Path> {
        self.get(controller)
            .ok_or_else(|| CgroupError::ControllerUnavailable {
                controller: controller.to_string(),
                resource: resource.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comounted_and_named_hierarchies_once() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        for dir in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            fs::create_dir(root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
        fs::write(root.join("not-a-hierarchy"), "").unwrap();

        let hierarchies = Hierarchies::discover(root).unwrap();
        let names: Vec<Vec<&str>> = hierarchies
            .iter()
            .map(|h| h.controllers.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["cpu", "cpuacct"],
                vec!["memory"],
                vec!["name=systemd"],
                vec![]
            ]
        );

        let path = CgroupPath::parse(None, "c1", false).unwrap();
        let dirs = hierarchies.cgroup_dirs(&path);
        let canonical = fs::canonicalize(root).unwrap();
        assert_eq!(
            dirs.get("cpuacct").unwrap(),
            canonical.join("cpu,cpuacct/vessel/c1")
        );
        let error = dirs.require("pids", "linux.resources.pids").unwrap_err();
        assert_eq!(
            error.to_string(),
            "The pids cgroup controller is not available, but linux.resources.pids needs it"
        );
    }
}
