//! Where a container's cgroup lives: the OCI `linux.cgroupsPath`, parsed and checked.
//!
//! Decisions (also in docs/cgroups.md):
//! - No cgroupsPath means `/vessel/<id>` (`/system.slice/vessel-<id>.scope` with systemd
//!   naming), so every vessel container sits under one parent that is easy to find.
//! - An absolute path `/a/b` is taken relative to the root of each hierarchy. The spec lets a
//!   runtime choose how to read a relative path; vessel reads `a/b` exactly like `/a/b`, so a
//!   container's place never depends on which cgroup the runtime process itself was started in.
//! - With systemd naming (`--systemd-cgroup`), the value is runc's `slice:prefix:name` and is
//!   mapped, without talking to systemd, to the cgroupfs directory systemd would use:
//!   `a-b.slice` expands to `/a.slice/a-b.slice`, and the unit is `<prefix>-<name>.scope`.
//! - `..` anywhere, an empty path, or the hierarchy root itself are rejected.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Parent of the default cgroups of vessel containers.
const DEFAULT_PARENT: &str = "vessel";
/// Slice used with systemd naming when the slice part is empty or no path is given.
const DEFAULT_SLICE: &str = "system.slice";
/// Scope prefix used with systemd naming when no path is given.
const DEFAULT_SCOPE_PREFIX: &str = "vessel";

/// A container's cgroup, as a path below the root of every hierarchy.
///
/// Always absolute, normalised (no `.`, `..`, or repeated `/`) and never the hierarchy root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgroupPath(PathBuf);

impl CgroupPath {
    /// Parses an OCI `linux.cgroupsPath` for the container `id`; see the module documentation
    /// for how absolute, relative, missing and systemd-style values are read.
    pub fn parse(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Self> {
        let absolute = match (cgroups_path, systemd) {
            (None, false) => {
                check_container_id(id, |c| !matches!(c, '/' | '\0' | '\n'))?;
                Path::new("/").join(DEFAULT_PARENT).join(id)
            }
            (None, true) => {
                check_container_id(id, is_unit_name_char)?;
                Path::new("/")
                    .join(DEFAULT_SLICE)
                    .join(format!("{DEFAULT_SCOPE_PREFIX}-{id}.scope"))
            }
            (Some(value), false) => parse_cgroupfs(value)?,
            (Some(value), true) => parse_systemd(value)?,
        };
        Ok(Self(absolute))
    }

    /// The path as it appears in `/proc/<pid>/cgroup`, e.g. `/vessel/abc`.
    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// The path without its leading `/`, ready to join to a hierarchy root.
    pub fn relative(&self) -> &Path {
        // Every constructor builds the path from "/", so the prefix is always there.
        self.0.strip_prefix("/").unwrap_or(&self.0)
    }

    /// The cgroup's directory inside the hierarchy mounted at `hierarchy_root`.
    pub fn in_hierarchy(&self, hierarchy_root: &Path) -> PathBuf {
        hierarchy_root.join(self.relative())
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

fn invalid(value: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidPath {
        value: value.into(),
        reason: reason.into(),
    }
}

/// The default path is built from the container id, so the id must be one path component.
fn check_container_id(id: &str, allowed: impl Fn(char) -> bool) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." || !id.chars().all(allowed) {
        return Err(invalid(
            id,
            "the container id cannot name a cgroup (it must be one non-empty path component)",
        ));
    }
    Ok(())
}

/// Reads a plain cgroupfs path, absolute or relative (both below the hierarchy root).
fn parse_cgroupfs(value: &Path) -> Result<PathBuf> {
    let shown = value.display().to_string();
    if let Some(text) = value.to_str() {
        if !text.contains('/') && text.split(':').count() == 3 {
            return Err(invalid(
                shown,
                "this is the systemd form slice:prefix:name, which needs --systemd-cgroup",
            ));
        }
    }
    let mut normalised = PathBuf::from("/");
    for component in value.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(invalid(shown, "'..' components are not allowed"));
            }
            Component::Normal(name) => {
                if has_forbidden_byte(name) {
                    return Err(invalid(shown, "NUL and newline are not allowed"));
                }
                normalised.push(name);
            }
            Component::Prefix(_) => return Err(invalid(shown, "not a Unix path")),
        }
    }
    if normalised == Path::new("/") {
        return Err(invalid(
            shown,
            "it names the root of the hierarchy, which a container cannot own",
        ));
    }
    Ok(normalised)
}

fn has_forbidden_byte(name: &OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    name.as_bytes().iter().any(|&b| b == 0 || b == b'\n')
}

/// Reads runc's systemd form `slice:prefix:name` and maps it to the cgroupfs path systemd
/// would create for the scope unit.
fn parse_systemd(value: &Path) -> Result<PathBuf> {
    let shown = value.display().to_string();
    let Some(text) = value.to_str() else {
        return Err(invalid(shown, "not valid UTF-8"));
    };
    let parts: Vec<&str> = text.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            shown,
            "with --systemd-cgroup the value must be slice:prefix:name",
        ));
    };
    for part in [slice, prefix, name] {
        if part == "." || part == ".." {
            return Err(invalid(shown, "'.' and '..' are not unit names"));
        }
        if !part.chars().all(is_unit_name_char) {
            return Err(invalid(
                shown,
                "systemd unit names may only hold ASCII letters, digits and -_.@\\",
            ));
        }
    }
    if name.is_empty() {
        return Err(invalid(shown, "the name part is empty"));
    }
    if name.ends_with(".slice") {
        return Err(invalid(
            shown,
            "a slice as the name part is not supported; name a scope",
        ));
    }
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let mut path = expand_slice(slice).map_err(|reason| invalid(&*shown, reason))?;
    if prefix.is_empty() {
        path.push(format!("{name}.scope"));
    } else {
        path.push(format!("{prefix}-{name}.scope"));
    }
    Ok(path)
}

/// Characters systemd accepts in unit names (besides ':', which separates the parts here).
fn is_unit_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '\\')
}

/// `a-b.slice` lives at `/a.slice/a-b.slice`: each dash opens a level (systemd.slice(5)).
fn expand_slice(slice: &str) -> Result<PathBuf, String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(format!("the slice {slice:?} does not end in .slice"));
    };
    let mut path = PathBuf::from("/");
    if base == "-" {
        // "-.slice" is systemd's root slice.
        return Ok(path);
    }
    if base.is_empty() || base.split('-').any(str::is_empty) {
        return Err(format!(
            "the slice {slice:?} has an empty level (leading, trailing or doubled '-')"
        ));
    }
    let mut level = String::new();
    for word in base.split('-') {
        if !level.is_empty() {
            level.push('-');
        }
        level.push_str(word);
        path.push(format!("{level}.slice"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Option<&str>, id: &str, systemd: bool) -> Result<CgroupPath> {
        CgroupPath::parse(value.map(Path::new), id, systemd)
    }

    fn parsed(value: Option<&str>, id: &str, systemd: bool) -> String {
        parse(value, id, systemd).unwrap().to_string()
    }

    fn rejection(value: Option<&str>, id: &str, systemd: bool) -> String {
        parse(value, id, systemd).unwrap_err().to_string()
    }

    #[test]
    fn missing_path_defaults_under_vessel() {
        assert_eq!(parsed(None, "abc", false), "/vessel/abc");
        let path = parse(None, "abc", false).unwrap();
        assert_eq!(path.relative(), Path::new("vessel/abc"));
        assert_eq!(
            path.in_hierarchy(Path::new("/sys/fs/cgroup/memory")),
            Path::new("/sys/fs/cgroup/memory/vessel/abc")
        );
    }

    #[test]
    fn missing_path_with_systemd_is_a_scope_in_system_slice() {
        assert_eq!(parsed(None, "abc", true), "/system.slice/vessel-abc.scope");
    }

    #[test]
    fn ids_that_cannot_be_a_component_are_rejected() {
        for id in ["", ".", "..", "a/b", "../x"] {
            let message = rejection(None, id, false);
            assert!(message.contains("container id"), "{id:?}: {message}");
        }
        assert!(rejection(None, "a b", true).contains("container id"));
    }

    #[test]
    fn absolute_and_relative_paths_are_both_below_the_root() {
        assert_eq!(parsed(Some("/a/b"), "x", false), "/a/b");
        assert_eq!(parsed(Some("a/b"), "x", false), "/a/b");
        assert_eq!(parsed(Some("//a/./b/"), "x", false), "/a/b");
    }

    #[test]
    fn parent_components_are_rejected_naming_the_value() {
        for value in ["../x", "/a/../../etc", "a/..", "/.."] {
            let message = rejection(Some(value), "x", false);
            assert!(message.contains(value), "{message}");
            assert!(message.contains("'..'"), "{message}");
        }
    }

    #[test]
    fn the_hierarchy_root_is_rejected() {
        for value in ["/", "", ".", "/./"] {
            assert!(rejection(Some(value), "x", false).contains("root of the hierarchy"));
        }
    }

    #[test]
    fn newlines_are_rejected() {
        assert!(rejection(Some("/a\nb"), "x", false).contains("newline"));
    }

    #[test]
    fn systemd_form_without_systemd_flag_is_rejected() {
        let message = rejection(Some("system.slice:docker:abc"), "x", false);
        assert!(message.contains("--systemd-cgroup"), "{message}");
    }

    #[test]
    fn systemd_form_maps_to_the_scope_directory() {
        assert_eq!(
            parsed(Some("system.slice:docker:abc"), "x", true),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            parsed(
                Some("kubepods-besteffort-pod12.slice:cri-containerd:abc"),
                "x",
                true
            ),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"
        );
        assert_eq!(
            parsed(Some(":vessel:abc"), "x", true),
            "/system.slice/vessel-abc.scope"
        );
        assert_eq!(parsed(Some("-.slice::abc"), "x", true), "/abc.scope");
    }

    #[test]
    fn malformed_systemd_values_are_rejected_naming_the_value() {
        let cases = [
            ("/a/b", "slice:prefix:name"),
            ("a:b", "slice:prefix:name"),
            ("a:b:c:d", "slice:prefix:name"),
            ("system:docker:abc", "does not end in .slice"),
            ("a--b.slice:p:n", "empty level"),
            ("-a.slice:p:n", "empty level"),
            ("a-.slice:p:n", "empty level"),
            ("system.slice:p:", "name part is empty"),
            ("system.slice:p:x.slice", "slice as the name"),
            ("system.slice:..:n", "'..'"),
            ("system.slice:p:..", "'..'"),
            ("../../x.slice:p:n", "unit names may only hold"),
            ("system.slice:p/q:n", "unit names may only hold"),
        ];
        for (value, expected) in cases {
            let message = rejection(Some(value), "x", true);
            assert!(message.contains(value), "{value}: {message}");
            assert!(message.contains(expected), "{value}: {message}");
        }
    }
}
