//! Walking a cgroup and the child cgroups inside it (created by the workload, e.g. a nested
//! runtime or systemd in the container).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::error::{CgroupError, Result};
use crate::fs::read_pids;

/// How often `rmdir` is retried while the cgroup is still busy: tasks that were just killed
/// leave the cgroup a moment after the signal.
const REMOVE_ATTEMPTS: u32 = 6;
/// First pause between attempts; it doubles each time (10 + 20 + ... + 160 ms in all).
const REMOVE_FIRST_PAUSE: Duration = Duration::from_millis(10);

/// `dir` and every cgroup below it, parents before children. A missing `dir` gives nothing.
pub(crate) fn cgroups_top_down(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        collect(dir, &mut found)?;
    }
    Ok(found)
}

fn collect(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    found.push(dir.to_path_buf());
    let list_error = |source| CgroupError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // Removed between being listed by its parent and now: nothing left to walk.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(list_error(error)),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_error)?;
        // Cgroups are real directories; never follow a symlink out of the tree.
        if entry.file_type().map_err(list_error)?.is_dir() {
            children.push(entry.path());
        }
    }
    children.sort();
    for child in children {
        collect(&child, found)?;
    }
    Ok(())
}

/// Every pid in `dir` and the cgroups below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for cgroup in cgroups_top_down(dir)? {
        match read_pids(&cgroup.join("cgroup.procs")) {
            Ok(found) => pids.extend(found),
            // A child cgroup that vanished while we walked holds nothing any more.
            Err(CgroupError::Read { source, .. })
                if source.kind() == io::ErrorKind::NotFound && cgroup != dir =>
            {
                continue
            }
            Err(error) => return Err(error),
        }
    }
    Ok(pids)
}

/// Removes `dir` and the cgroups below it, children first. Already gone is fine; a cgroup
/// still busy is retried a few times. Nothing above `dir` is touched.
pub(crate) fn remove_recursive(dir: &Path) -> Result<()> {
    let mut cgroups = cgroups_top_down(dir)?;
    cgroups.reverse();
    for cgroup in cgroups {
        remove_one(&cgroup)?;
    }
    Ok(())
}

fn remove_one(dir: &Path) -> Result<()> {
    let mut pause = REMOVE_FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error)
                if error.raw_os_error() == Some(libc::EBUSY) && attempt < REMOVE_ATTEMPTS =>
            {
                thread::sleep(pause);
                pause *= 2;
                attempt += 1;
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_parents_before_children_and_removes_leaf_first() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path().join("c");
        fs::create_dir_all(top.join("a/deep")).unwrap();
        fs::create_dir_all(top.join("b")).unwrap();
        // A symlink to a directory outside must not be followed.
        std::os::unix::fs::symlink(root.path(), top.join("link")).unwrap();
        let walked = cgroups_top_down(&top).unwrap();
        assert_eq!(
            walked,
            vec![
                top.clone(),
                top.join("a"),
                top.join("a/deep"),
                top.join("b")
            ]
        );
        fs::remove_file(top.join("link")).unwrap();
        remove_recursive(&top).unwrap();
        assert!(!top.exists());
        assert!(root.path().exists());
        // Removing again is not an error.
        remove_recursive(&top).unwrap();
    }

    #[test]
    fn lists_pids_of_child_cgroups() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path();
        fs::create_dir(top.join("child")).unwrap();
        fs::write(top.join("cgroup.procs"), "1\n2\n").unwrap();
        fs::write(top.join("child/cgroup.procs"), "3\n").unwrap();
        assert_eq!(pids_recursive(top).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn garbage_in_cgroup_procs_is_an_error_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.procs"), "1\nx\n").unwrap();
        let message = pids_recursive(root.path()).unwrap_err().to_string();
        assert!(message.contains("cgroup.procs"), "{message}");
    }

    #[test]
    fn a_missing_top_cgroup_procs_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        assert!(pids_recursive(root.path()).is_err());
    }
}
