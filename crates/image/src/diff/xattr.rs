//! Reading extended attributes of a path without following a symlink
//! (`llistxattr`/`lgetxattr`; neither `std` nor `nix` has them).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// Every extended attribute of `path` (not following a final symlink), as
/// (name, value) pairs in the order the filesystem lists them. A filesystem
/// without xattr support gives none.
pub fn list(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let p = cpath(path)?;
    let mut names = vec![0u8; 1024];
    let len = loop {
        // SAFETY: `p` is NUL-terminated and `names` is a writable buffer of
        // the length passed; the kernel writes at most that many bytes.
        let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if names.len() < 1 << 20 => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if let Some(value) = get(path, OsStr::from_bytes(name))? {
            out.push((name.to_vec(), value));
        }
    }
    Ok(out)
}

/// The value of attribute `name` of `path` (not following a final
/// symlink); `None` when it is not set.
pub fn get(path: &Path, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in an xattr name"))?;
    let mut value = vec![0u8; 256];
    loop {
        // SAFETY: `p` and `n` are NUL-terminated; `value` is a writable
        // buffer of the length passed.
        let got = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if got >= 0 {
            value.truncate(got as usize);
            return Ok(Some(value));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if value.len() < 1 << 20 => value.resize(value.len() * 4, 0),
            Some(libc::ENODATA | libc::ENOTSUP) => return Ok(None),
            _ => return Err(e),
        }
    }
}
