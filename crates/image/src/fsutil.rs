//! Small file helpers shared by the store's modules: atomic writes, unique
//! temporary names, directory fsync, advisory locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique across processes and threads: pid, a counter, the time.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

/// Create a new file with a unique name in `dir` (never an existing one).
pub fn create_unique(dir: &Path, prefix: &str) -> io::Result<(File, PathBuf)> {
    loop {
        let path = dir.join(unique_name(prefix));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// fsync a directory (so a rename in it is durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `path` with `data` atomically: write a temporary file beside it,
/// fsync, rename over, fsync the directory. Readers see the old or the new
/// content, never a mix; a crash leaves at most a stray temporary file.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let (mut f, tmp) = create_unique(dir, &format!(".{name}.tmp"))?;
    let result = (|| {
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive `flock` on a lock file, held until dropped. Serializes
/// read-modify-write cycles between vessel processes.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Block until the exclusive lock on `path` (created if needed) is ours.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        let file = open_lock_file(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(FileLock { _file: file })
    }

    /// Block until a shared lock on `path` (created if needed) is ours:
    /// many holders at once, none while someone holds it exclusively.
    pub fn shared(path: &Path) -> io::Result<Self> {
        let file = open_lock_file(path)?;
        flock(&file, libc::LOCK_SH)?;
        Ok(FileLock { _file: file })
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// `flock(2)` with `op`, retried on EINTR.
pub fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let ret = unsafe { libc::flock(file.as_raw_fd(), op) };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether the file at `path` is locked by a live holder: its owner keeps an
/// exclusive `flock` on it for as long as it lives, and the kernel drops the
/// lock when the owner dies (even by SIGKILL). A missing file is not held.
pub fn is_held(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Apparent size of the files under `path` (regular files and symlinks,
/// each hard-linked inode once; mount points below are not entered).
/// Unreadable parts count as 0: this is for reports, not decisions.
pub fn dir_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = fs::symlink_metadata(path) else {
        return 0;
    };
    let dev = top.dev();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![(path.to_path_buf(), top)];
    while let Some((p, m)) = stack.pop() {
        if m.is_dir() {
            if m.dev() != dev {
                continue;
            }
            for e in fs::read_dir(&p).into_iter().flatten().flatten() {
                if let Ok(m) = e.path().symlink_metadata() {
                    stack.push((e.path(), m));
                }
            }
        } else if (m.is_file() || m.file_type().is_symlink())
            && (m.nlink() <= 1 || seen.insert((m.dev(), m.ino())))
        {
            total += m.len();
        }
    }
    total
}
