//! Path resolution confined to a container's root filesystem.
//!
//! A rootfs is untrusted: an image may contain `/proc -> /` or
//! `/etc -> ../../host`. Every path the runtime creates or mounts onto inside
//! the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)`, so symlinks are
//! followed as if the rootfs were `/` and can never lead outside it. Mounts then
//! target the resolved descriptor through `/proc/self/fd/N`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let c = CString::new(rel.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a properly
        // sized open_how that both outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us; we own it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// The path with its root and `.` components removed (so it is relative to the rootfs).
fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Most symlinks followed while resolving one path (the kernel's limit too).
const MAX_SYMLINKS: usize = 40;

/// Resolve `path` inside `root` the way the kernel would if `root` were `/`,
/// also through components that do not exist yet: the result is relative to
/// `root`, has no symlink or `..` in it, and its missing tail is what must be
/// created. An image's `/mnt/x -> /host/dir` thus means `<rootfs>/host/dir`,
/// as runc (securejoin) reads it, rather than a failure.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: std::collections::VecDeque<PathBuf> = relative(path)
        .components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        if comp.as_os_str() == "." {
            continue;
        }
        if comp.as_os_str() == ".." {
            // `resolved` holds no symlinks, so `..` is lexical (and stops at the root).
            resolved.pop();
            continue;
        }
        match readlink_in(root, &resolved, &comp) {
            Ok(target) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in relative(&target).components().rev() {
                    pending.push_front(PathBuf::from(c.as_os_str()));
                }
            }
            // Not a symlink, or not there (then nothing below it is either).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {
                resolved.push(&comp)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(resolved)
}

/// `readlinkat` of `name` in directory `dir` (relative to `root`, free of symlinks).
fn readlink_in(root: BorrowedFd<'_>, dir: &Path, name: &Path) -> io::Result<PathBuf> {
    let dir_fd = open_in_root(root, dir, libc::O_PATH | libc::O_DIRECTORY)?;
    let cname = CString::new(name.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat with a directory fd we own, a NUL-terminated single
    // component and a buffer of the length passed.
    let n = unsafe {
        libc::readlinkat(
            dir_fd.as_raw_fd(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

/// Ensure directory `path` exists inside `root` (like `mkdir -p`) and return an
/// `O_PATH` descriptor of it.
pub fn mkdir_all_in(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    if let Ok(fd) = open_in_root(root, path, flags) {
        return Ok(fd);
    }
    if let Some(fd) = mkdir_missing_tail(root, path, mode) {
        return Ok(fd);
    }
    mkdir_all_resolved(root, path, mode)
}

/// The common case of [`mkdir_all_in`], in a few system calls: open the
/// deepest existing ancestor (through `RESOLVE_IN_ROOT`, so symlinks up to
/// there are followed inside the root), then create each missing component
/// in the directory opened last, by name, and open it with `O_NOFOLLOW`.
/// `None` when a component is in the way (a symlink, dangling or planted
/// meanwhile, or anything else that exists) or the path has `..`: the
/// general, symlink-resolving walk handles those.
fn mkdir_missing_tail(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Option<OwnedFd> {
    let rel = relative(path);
    let comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
    if comps.iter().any(|c| *c == "..") {
        return None;
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut existing = comps.len();
    let mut dir = loop {
        if existing == 0 {
            break open_in_root(root, Path::new("."), flags).ok()?;
        }
        existing -= 1;
        let ancestor: PathBuf = comps[..existing].iter().collect();
        match open_in_root(root, &ancestor, flags) {
            Ok(fd) => break fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return None,
        }
    };
    for name in &comps[existing..] {
        let cname = CString::new(name.as_encoded_bytes()).ok()?;
        // SAFETY: mkdirat with a directory fd we own and a single,
        // NUL-terminated path component (no '/', not ".."), so it names an
        // entry of that directory and cannot be redirected.
        if unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), mode) } != 0 {
            return None;
        }
        // SAFETY: openat of that same single component; O_NOFOLLOW refuses a
        // symlink swapped in since the mkdirat.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                cname.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor; we own it.
        dir = unsafe { OwnedFd::from_raw_fd(fd) };
    }
    Some(dir)
}

/// [`mkdir_all_in`] through symlinks that name missing directories.
fn mkdir_all_resolved(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    // Each step below still goes through RESOLVE_IN_ROOT, so a symlink
    // swapped in meanwhile cannot lead out of the root either.
    let rel = resolve_in_root(root, path)?;
    let mut current = open_in_root(root, Path::new("."), flags)?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        prefix.push(comp);
        match open_in_root(root, &prefix, flags) {
            Ok(fd) => current = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = CString::new(comp.as_os_str().as_encoded_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
                // SAFETY: mkdirat with a directory fd we own and a single,
                // NUL-terminated path component (no '/'), so it cannot be redirected.
                let ret = unsafe { libc::mkdirat(current.as_raw_fd(), name.as_ptr(), mode) };
                if ret != 0 {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(err);
                    }
                }
                current = open_in_root(root, &prefix, flags)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(current)
}

/// Ensure a regular file `path` exists inside `root` (creating it and its
/// parent directories if needed) and return an `O_PATH` descriptor of it.
pub fn create_file_in(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let rel = resolve_in_root(root, path)?;
    let parent = rel.parent().unwrap_or(Path::new("."));
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = mkdir_all_in(root, parent, 0o755)?;
    // O_PATH descriptors cannot be used with openat for creation: reopen the
    // directory for real through its resolved descriptor.
    let dir_real = reopen(dir.as_fd_borrowed(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    let cname = CString::new(name.as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: openat with a directory fd we own and a single path component;
    // O_NOFOLLOW|O_EXCL refuse a symlink planted in its place.
    let fd = unsafe {
        libc::openat(
            dir_real.as_raw_fd(),
            cname.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err);
        }
    } else {
        // SAFETY: we own the descriptor just returned and close it here.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    open_in_root(root, &rel, libc::O_PATH)
}

/// Reopen an `O_PATH` descriptor with real access flags via /proc/self/fd.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path = fd_path(fd);
    let c = CString::new(path).expect("no NUL in a /proc path");
    // SAFETY: open of a NUL-terminated path we built; returns a new descriptor or -1.
    let ret = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// `/proc/self/fd/N` for a descriptor: a path that names exactly what the
/// descriptor refers to, usable as a mount target.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Borrow helper so that call sites read naturally.
pub trait AsFdBorrowed {
    /// Borrow the descriptor.
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl AsFdBorrowed for OwnedFd {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn open_dir(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn symlink_to_outside_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("evil2")).unwrap();
        let rfd = open_dir(&root);
        // A symlink dangling inside the root is followed inside it: what it
        // names is created under the root, never outside.
        let inside = root.join(outside.strip_prefix("/").unwrap());
        mkdir_all_in(rfd.as_fd(), Path::new("/evil2/sub"), 0o755).unwrap();
        assert!(root.join("outside/sub").is_dir());
        create_file_in(rfd.as_fd(), Path::new("/evil/file")).unwrap();
        assert!(inside.join("file").is_file());
        assert!(!outside.join("sub").exists(), "mkdir escaped the root");
        assert!(
            !outside.join("file").exists(),
            "file creation escaped the root"
        );
        // Once the target exists inside the root, the symlink leads there.
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        mkdir_all_in(rfd.as_fd(), Path::new("/evil/sub"), 0o755).unwrap();
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        assert!(!outside.join("sub").exists());
    }

    #[test]
    fn resolve_follows_links_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink("/x/y", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../b", root.join("a/rel")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let rfd = open_dir(&root);
        let r = |p: &str| resolve_in_root(rfd.as_fd(), Path::new(p));
        assert_eq!(r("/a/abs/z").unwrap(), Path::new("x/y/z"));
        assert_eq!(r("/a/rel/c").unwrap(), Path::new("b/c"));
        assert_eq!(r("/a/../../a/./new").unwrap(), Path::new("a/new"));
        assert_eq!(r("/loop/x").unwrap_err().raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn missing_directories_are_created_below_existing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("sys/fs")).unwrap();
        std::os::unix::fs::symlink("sys", root.join("s")).unwrap();
        let rfd = open_dir(&root);
        let fd = mkdir_all_in(rfd.as_fd(), Path::new("/s/fs/cgroup/cpu"), 0o755).unwrap();
        assert!(root.join("sys/fs/cgroup/cpu").is_dir());
        // The descriptor is the new directory.
        let linked = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert_eq!(
            linked,
            std::fs::canonicalize(root.join("sys/fs/cgroup/cpu")).unwrap()
        );
        // A file in the way is an error, not something to walk through.
        std::fs::write(root.join("file"), "").unwrap();
        let err = mkdir_all_in(rfd.as_fd(), Path::new("/file/sub"), 0o755).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn dotdot_cannot_climb_out() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let rfd = open_dir(&root);
        mkdir_all_in(rfd.as_fd(), Path::new("/../../escaped"), 0o755).unwrap();
        assert!(!tmp.path().join("escaped").exists());
        assert!(root.join("escaped").is_dir());
    }
}
