//! Snapshots: directory trees stacked with overlayfs.
//!
//! A *committed* snapshot is read-only and lives at `snapshots/<name>/fs`
//! (layers are committed under their chain ID's hex); an *active* snapshot
//! (a container's writable layer, or a layer being unpacked) lives at
//! `snapshots/active/<key>/{fs,work}`. Each records its parent's name in a
//! `parent` file, so a chain is walked by names. Changes of the set of
//! snapshots take an exclusive `flock` on `snapshots/lock`, so that a
//! `remove` can never take away a parent that a concurrent `prepare` is
//! about to use.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{unique_name, FileLock};

/// Failures of the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file or directory could not be used.
    #[error("Snapshotter: {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// A key or name with characters a path or mount option cannot hold.
    #[error("Invalid snapshot name {0:?}: use 1-128 of [A-Za-z0-9_.-], not starting with . or -")]
    InvalidName(String),
    /// No such snapshot.
    #[error("Snapshot {0:?} does not exist")]
    NotFound(String),
    /// The name is taken.
    #[error("Snapshot {0:?} already exists")]
    AlreadyExists(String),
    /// Other snapshots are built on this one.
    #[error("Snapshot {name:?} is the parent of {child:?}")]
    InUse {
        /// The snapshot to remove.
        name: String,
        /// One of its children.
        child: String,
    },
    /// A view cannot be committed.
    #[error("Snapshot {0:?} is a read-only view and cannot be committed")]
    NotActive(String),
}

/// One mount, as `mount(2)` takes it (containerd's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub fstype: String,
    /// The source (`overlay`, or a directory for bind mounts).
    pub source: PathBuf,
    /// Mount options: `lowerdir=...`, `upperdir=...`, `workdir=...`, `ro`, `rbind`.
    pub options: Vec<String>,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { op, path, source }
}

fn check_name(name: &str) -> Result<(), SnapshotError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "active"
        && name != "lock"
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidName(name.to_string()))
    }
}

/// The snapshotter of a store root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

impl Snapshotter {
    /// Open (creating) `root` (normally `<store>/snapshots`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SnapshotError> {
        let root = root.into();
        let active = root.join("active");
        fs::create_dir_all(&active).map_err(io_err("create", &active))?;
        Ok(Snapshotter { root })
    }

    fn lock(&self) -> Result<FileLock, SnapshotError> {
        let p = self.root.join("lock");
        FileLock::exclusive(&p).map_err(io_err("lock", &p))
    }

    fn committed_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn active_dir(&self, key: &str) -> PathBuf {
        self.root.join("active").join(key)
    }

    /// The tree of a committed snapshot.
    pub fn fs_dir(&self, name: &str) -> PathBuf {
        self.committed_dir(name).join("fs")
    }

    /// The writable upper directory of an active snapshot.
    pub fn upper_dir(&self, key: &str) -> PathBuf {
        self.active_dir(key).join("fs")
    }

    /// Whether a committed snapshot exists.
    pub fn exists(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.fs_dir(name).is_dir()
    }

    /// Whether an active snapshot (or view) exists.
    pub fn active_exists(&self, key: &str) -> bool {
        check_name(key).is_ok() && self.active_dir(key).is_dir()
    }

    /// The committed parent of the active snapshot `key`.
    pub fn parent_of_active(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        check_name(key)?;
        read_parent(&self.active_dir(key))
    }

    /// The committed parent chain starting at `name` (nearest first).
    pub fn chain(&self, name: &str) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        let mut cur = Some(name.to_string());
        while let Some(n) = cur {
            check_name(&n)?;
            if !self.exists(&n) {
                return Err(SnapshotError::NotFound(n));
            }
            cur = read_parent(&self.committed_dir(&n))?;
            out.push(n);
            if out.len() > 500 {
                return Err(SnapshotError::InvalidName(name.to_string()));
            }
        }
        Ok(out)
    }

    /// A new writable snapshot `key` on top of the committed `parent`.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create_active(key, parent, false)?;
        self.mounts(key)
    }

    /// A new read-only view `key` of the committed `parent`.
    pub fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create_active(key, parent, true)?;
        self.mounts(key)
    }

    fn create_active(
        &self,
        key: &str,
        parent: Option<&str>,
        view: bool,
    ) -> Result<(), SnapshotError> {
        check_name(key)?;
        let _lock = self.lock()?;
        if let Some(p) = parent {
            self.chain(p)?;
        }
        let dir = self.active_dir(key);
        // Build under a temporary name, then rename: a crash leaves no half snapshot.
        let tmp = self
            .root
            .join("active")
            .join(format!(".{}", unique_name("new")));
        let result = (|| {
            for d in [tmp.join("fs"), tmp.join("work")] {
                fs::create_dir_all(&d).map_err(io_err("create", &d))?;
            }
            let pf = tmp.join("parent");
            fs::write(&pf, parent.unwrap_or("")).map_err(io_err("write", &pf))?;
            if view {
                let k = tmp.join("view");
                fs::write(&k, "").map_err(io_err("write", &k))?;
            }
            rename_noreplace(&tmp, &dir).map_err(|e| {
                if e.raw_os_error() == Some(libc::EEXIST)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY)
                {
                    SnapshotError::AlreadyExists(key.to_string())
                } else {
                    io_err("rename", &dir)(e)
                }
            })
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    /// The mounts of an active snapshot or view.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        check_name(key)?;
        let dir = self.active_dir(key);
        if !dir.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let view = dir.join("view").exists();
        let lowers: Vec<PathBuf> = match read_parent(&dir)? {
            Some(p) => self.chain(&p)?.iter().map(|n| self.fs_dir(n)).collect(),
            None => Vec::new(),
        };
        let upper = dir.join("fs");
        let bind = |source: PathBuf, ro: bool| {
            let mut options = vec!["rbind".to_string()];
            options.push(if ro { "ro" } else { "rw" }.to_string());
            vec![Mount {
                fstype: "bind".into(),
                source,
                options,
            }]
        };
        let lowerdir = || {
            let l: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
            format!("lowerdir={}", l.join(":"))
        };
        Ok(match (view, lowers.len()) {
            (false, 0) => bind(upper, false),
            (true, 0) => bind(upper, true),
            (true, 1) => bind(lowers[0].clone(), true),
            (true, _) => vec![Mount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: vec!["index=off".into(), lowerdir(), "ro".into()],
            }],
            (false, _) => vec![Mount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    "index=off".into(),
                    lowerdir(),
                    format!("upperdir={}", upper.display()),
                    format!("workdir={}", dir.join("work").display()),
                ],
            }],
        })
    }

    /// Make the active snapshot `key` (unmounted) the committed snapshot
    /// `name`. Its upper directory becomes `snapshots/<name>/fs` by a rename.
    pub fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        check_name(name)?;
        check_name(key)?;
        let _lock = self.lock()?;
        let dir = self.active_dir(key);
        if !dir.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        if dir.join("view").exists() {
            return Err(SnapshotError::NotActive(key.to_string()));
        }
        if self.exists(name) {
            return Err(SnapshotError::AlreadyExists(name.to_string()));
        }
        let work = dir.join("work");
        fs::remove_dir_all(&work).map_err(io_err("remove", &work))?;
        let target = self.committed_dir(name);
        rename_noreplace(&dir, &target).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) {
                SnapshotError::AlreadyExists(name.to_string())
            } else {
                io_err("rename", &target)(e)
            }
        })?;
        crate::fsutil::sync_dir(&self.root).map_err(io_err("sync", &self.root))
    }

    /// Remove an active snapshot or view `key`, or else the committed
    /// snapshot `key` if no other snapshot names it as parent.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        check_name(key)?;
        let _lock = self.lock()?;
        let dir = if self.active_dir(key).is_dir() {
            self.active_dir(key)
        } else if self.committed_dir(key).is_dir() {
            if let Some(child) = self.children_of(key)?.into_iter().next() {
                return Err(SnapshotError::InUse {
                    name: key.to_string(),
                    child,
                });
            }
            self.committed_dir(key)
        } else {
            return Err(SnapshotError::NotFound(key.to_string()));
        };
        // Rename out of the way first, so the snapshot disappears at once.
        let doomed = self
            .root
            .join("active")
            .join(format!(".{}", unique_name("rm")));
        fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// Names of the snapshots whose parent is `name`.
    fn children_of(&self, name: &str) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        for base in [self.root.clone(), self.root.join("active")] {
            for e in fs::read_dir(&base).map_err(io_err("list", &base))? {
                let e = e.map_err(io_err("list", &base))?;
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') || !e.path().is_dir() || (base == self.root && n == "active")
                {
                    continue;
                }
                if read_parent(&e.path())?.as_deref() == Some(name) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// Remove what killed processes left: half-made (`.new-*`) and
    /// half-removed (`.rm-*`) directories, and layers being unpacked by a
    /// process that no longer exists (`extract-<pid>-*`), unmounting their
    /// lower-layer mount first. Every change of the set happens under the
    /// lock, so under it the first two are debris.
    pub(crate) fn remove_debris(&self) -> Result<usize, SnapshotError> {
        let _lock = self.lock()?;
        let base = self.root.join("active");
        let mut n = 0;
        for e in fs::read_dir(&base)
            .map_err(io_err("list", &base))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let dead_extract = name
                .strip_prefix("extract-")
                .and_then(|r| r.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if name.starts_with(".new-") || name.starts_with(".rm-") || dead_extract {
                let merged = e.path().join("merged");
                if merged.exists() {
                    let _ = crate::mount::unmount(&merged);
                }
                if fs::remove_dir_all(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Names of every committed snapshot.
    pub fn list_committed(&self) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let e = e.map_err(io_err("list", &self.root))?;
            let n = e.file_name().to_string_lossy().into_owned();
            if check_name(&n).is_ok() && e.path().join("fs").is_dir() {
                out.push(n);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn read_parent(dir: &Path) -> Result<Option<String>, SnapshotError> {
    let p = dir.join("parent");
    match fs::read_to_string(&p) {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &p)(e)),
    }
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(io::Error::from)
}
