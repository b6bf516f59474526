//! Applying one tar entry.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use tar::EntryType;

use super::path::{components, join};
use super::sys;
use super::{show, ApplyError, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// Extended attributes a layer may not set: overlayfs keeps its own
/// metadata (opaque, redirect, metacopy) there, and a layer forging it
/// could make overlayfs look up paths it never should.
const FORBIDDEN_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

pub(super) struct State<'a> {
    pub root: BorrowedFd<'a>,
    pub same_owner: bool,
    /// Paths this layer has created (so an opaque marker keeps them).
    pub written: HashSet<Vec<u8>>,
    /// Directories and their mtimes, set last (children change them).
    pub dirs: Vec<(Vec<CString>, i64)>,
    pub entries: u64,
    pub bytes: u64,
}

fn err(entry: &str, op: &'static str) -> impl FnOnce(io::Error) -> ApplyError {
    let entry = entry.to_string();
    move |source| ApplyError::Entry { entry, op, source }
}

fn is_enoent(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

const DIR_FLAGS: i32 = libc::O_RDONLY | libc::O_DIRECTORY;

impl State<'_> {
    pub fn apply<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = components(&e.path_bytes())?;
        self.entries += 1;
        let shown = show(&comps);
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // The root itself: its metadata belongs to the target.
        };
        if name.to_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parent, name, &shown);
        }
        let dir = self.parent_dir(parent, &shown)?;
        let dir = dir.as_fd();
        let header = e.header();
        let mode = header.mode().map_err(ApplyError::Read)? & 0o7777;
        let owner = if self.same_owner {
            Some((
                header.uid().map_err(ApplyError::Read)? as u32,
                header.gid().map_err(ApplyError::Read)? as u32,
            ))
        } else {
            None
        };
        let mtime = header.mtime().map_err(ApplyError::Read)? as i64;
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);

        if kind == EntryType::Link {
            let target = e
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default();
            self.hard_link(dir, name, &target, &shown)?;
            self.written.insert(join(&comps).into_bytes());
            return Ok(());
        }

        // Replace what is there (without following it), except that a
        // directory entry merges into an existing directory.
        if let Some(st) = sys::lstat_at(dir, name).map_err(err(&shown, "stat"))? {
            let existing_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if !(kind == EntryType::Directory && existing_dir) {
                sys::remove_all_at(dir, name).map_err(err(&shown, "replace existing entry"))?;
            }
        }
        let xattrs = xattrs(e)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = sys::open_at(
                    dir,
                    name,
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                    0o600,
                )
                .map_err(err(&shown, "create file"))?;
                let mut file = File::from(fd);
                self.bytes += io::copy(e, &mut file).map_err(ApplyError::Read)?;
                self.finish_fd(file.as_fd(), owner, mode, &xattrs, &shown)?;
                sys::futimes(file.as_fd(), mtime).map_err(err(&shown, "set times"))?;
            }
            EntryType::Directory => {
                match sys::mkdir_at(dir, name, 0o700) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        return Err(err(&shown, "create directory")(e))
                    }
                    _ => {}
                }
                let fd = sys::open_at(dir, name, DIR_FLAGS, 0).map_err(err(&shown, "open"))?;
                self.finish_fd(fd.as_fd(), owner, mode, &xattrs, &shown)?;
                self.dirs.push((comps.clone(), mtime));
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                let target = sys::cstr(&target).map_err(err(&shown, "read symlink target"))?;
                sys::symlink_at(&target, dir, name).map_err(err(&shown, "create symlink"))?;
                if let Some((uid, gid)) = owner {
                    sys::lchown_at(dir, name, uid, gid).map_err(err(&shown, "chown"))?;
                }
                sys::lutimes_at(dir, name, mtime).map_err(err(&shown, "set times"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(major, minor);
                sys::mknod_at(dir, name, fmt | mode, dev).map_err(err(&shown, "mknod"))?;
                if let Some((uid, gid)) = owner {
                    sys::lchown_at(dir, name, uid, gid).map_err(err(&shown, "chown"))?;
                }
                sys::chmod_at(dir, name, mode).map_err(err(&shown, "chmod"))?;
                sys::lutimes_at(dir, name, mtime).map_err(err(&shown, "set times"))?;
            }
            _ => return Ok(()), // Unknown entry types are skipped, as docker does.
        }
        self.written.insert(join(&comps).into_bytes());
        Ok(())
    }

    fn finish_fd(
        &self,
        fd: BorrowedFd<'_>,
        owner: Option<(u32, u32)>,
        mode: u32,
        xattrs: &[(CString, Vec<u8>)],
        shown: &str,
    ) -> Result<(), ApplyError> {
        sys::fchown_fchmod(fd, owner, mode).map_err(err(shown, "set owner and mode"))?;
        for (k, v) in xattrs {
            match sys::fsetxattr(fd, k, v) {
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                r => r.map_err(err(shown, "set extended attribute"))?,
            }
        }
        Ok(())
    }

    /// The directory that holds the entry, created (mode 0755) if missing.
    /// Every lookup is `RESOLVE_IN_ROOT`; a new directory is made in the
    /// already resolved parent, by name.
    fn parent_dir(&self, parent: &[CString], shown: &str) -> Result<OwnedFd, ApplyError> {
        match sys::open_in_root(self.root, &join(parent), DIR_FLAGS) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err(shown, "open parent directory")(e)),
        }
        let mut cur = sys::open_in_root(self.root, c".", DIR_FLAGS).map_err(err(shown, "open"))?;
        for i in 0..parent.len() {
            let prefix = join(&parent[..=i]);
            cur = match sys::open_in_root(self.root, &prefix, DIR_FLAGS) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // EEXIST here means a dangling symlink: refused.
                    sys::mkdir_at(cur.as_fd(), &parent[i], 0o755)
                        .map_err(err(shown, "create parent directory"))?;
                    sys::open_in_root(self.root, &prefix, DIR_FLAGS)
                        .map_err(err(shown, "open parent directory"))?
                }
                Err(e) => return Err(err(shown, "open parent directory")(e)),
            };
        }
        Ok(cur)
    }

    fn hard_link(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        target: &[u8],
        shown: &str,
    ) -> Result<(), ApplyError> {
        let link_err = |source: io::Error| ApplyError::HardLink {
            entry: shown.to_string(),
            target: String::from_utf8_lossy(target).into_owned(),
            source,
        };
        let tcomps = components(target)?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(link_err(io::Error::from_raw_os_error(libc::EISDIR)));
        };
        let tdir = sys::open_in_root(self.root, &join(tparent), DIR_FLAGS).map_err(link_err)?;
        let tst = sys::lstat_at(tdir.as_fd(), tname)
            .map_err(link_err)?
            .ok_or_else(|| link_err(io::Error::from_raw_os_error(libc::ENOENT)))?;
        if let Some(st) = sys::lstat_at(dir, name).map_err(err(shown, "stat"))? {
            if st.st_ino == tst.st_ino && st.st_dev == tst.st_dev {
                return Ok(()); // Already that file.
            }
            sys::remove_all_at(dir, name).map_err(err(shown, "replace existing entry"))?;
        }
        sys::link_at(tdir.as_fd(), tname, dir, name).map_err(link_err)
    }

    fn whiteout(&mut self, parent: &[CString], name: &CStr, shown: &str) -> Result<(), ApplyError> {
        let opaque = name.to_bytes() == WHITEOUT_OPAQUE.as_bytes();
        let hidden = &name.to_bytes()[WHITEOUT_PREFIX.len()..];
        if !opaque
            && (hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/'))
        {
            return Err(ApplyError::BadWhiteout(shown.to_string()));
        }
        let dir = match sys::open_in_root(self.root, &join(parent), DIR_FLAGS) {
            Ok(d) => d,
            Err(e) if is_enoent(&e) => return Ok(()), // Nothing below to hide.
            Err(e) => return Err(err(shown, "open whiteout directory")(e)),
        };
        if opaque {
            return self.clear_unwritten(dir.as_fd(), parent.to_vec(), shown);
        }
        let hidden = sys::cstr(hidden).map_err(err(shown, "read whiteout"))?;
        sys::remove_all_at(dir.as_fd(), &hidden).map_err(err(shown, "apply whiteout"))
    }

    /// Opaque directory: remove everything below `dir` that this layer did
    /// not write.
    fn clear_unwritten(
        &self,
        dir: BorrowedFd<'_>,
        path: Vec<CString>,
        shown: &str,
    ) -> Result<(), ApplyError> {
        for child in sys::list_dir(dir).map_err(err(shown, "list opaque directory"))? {
            let mut p = path.clone();
            p.push(child.clone());
            if !self.written.contains(join(&p).as_bytes()) {
                sys::remove_all_at(dir, &child).map_err(err(shown, "apply opaque whiteout"))?;
            } else if let Ok(sub) = sys::open_at(dir, &child, DIR_FLAGS, 0) {
                self.clear_unwritten(sub.as_fd(), p, shown)?;
            }
        }
        Ok(())
    }

    /// Set directory mtimes, deepest last-written first.
    pub fn finish_dirs(&mut self) -> Result<(), ApplyError> {
        for (comps, mtime) in self.dirs.iter().rev() {
            let fd = match sys::open_in_root(self.root, &join(comps), DIR_FLAGS | libc::O_NOFOLLOW)
            {
                Ok(fd) => fd,
                Err(_) => continue, // Replaced or removed later in the layer.
            };
            sys::futimes(fd.as_fd(), *mtime).map_err(err(&show(comps), "set times"))?;
        }
        Ok(())
    }
}

/// `SCHILY.xattr.*` PAX records, minus overlayfs's own attributes.
fn xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Vec<(CString, Vec<u8>)>, ApplyError> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions().map_err(ApplyError::Read)? {
        for ext in exts {
            let ext = ext.map_err(ApplyError::Read)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                if name.starts_with(FORBIDDEN_XATTR_PREFIX) {
                    continue;
                }
                if let Ok(name) = CString::new(name) {
                    out.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}
