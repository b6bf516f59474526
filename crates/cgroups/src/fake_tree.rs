//! A cgroup tree made of plain files in a temporary directory, for unit tests.
//!
//! Writes never create files, so a test creates every file it expects to be written, just as
//! the kernel would provide it, and reads it back afterwards.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub(crate) struct FakeTree {
    dir: tempfile::TempDir,
}

impl FakeTree {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Creates `relative` (and its parents) holding `content`.
    pub(crate) fn file(&self, relative: &str, content: &str) -> &Self {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("file inside the tree")).expect("parent dir");
        fs::write(&path, content).expect("write fake file");
        self
    }

    /// Creates empty files `dir/name` for each name.
    pub(crate) fn files(&self, dir: &str, names: &[&str]) -> &Self {
        for name in names {
            self.file(&format!("{dir}/{name}"), "");
        }
        self
    }

    pub(crate) fn dir(&self, relative: &str) -> &Self {
        fs::create_dir_all(self.path(relative)).expect("create fake dir");
        self
    }

    pub(crate) fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative))
            .unwrap_or_else(|error| panic!("read {relative}: {error}"))
    }

    pub(crate) fn exists(&self, relative: &str) -> bool {
        self.path(relative).exists()
    }
}

/// `LinuxResources` from its config.json form, so tests use the spec's field names.
pub(crate) fn resources(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(json).expect("valid linux.resources")
}
