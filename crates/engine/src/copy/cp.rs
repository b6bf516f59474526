//! `vessel cp`: docker's rules for where a copy lands.
//!
//! - SRC a file: DEST missing → written as DEST (its parent must exist; a
//!   DEST ending in `/` must be an existing directory); DEST a directory →
//!   copied into it; DEST a file → overwritten.
//! - SRC a directory: DEST missing → created as a copy of SRC; DEST a
//!   directory → SRC copied into it (SRC ending in `/.`: its content);
//!   DEST a file → error.
//! - `-` as SRC is a tar stream on stdin extracted into the directory
//!   DEST; `-` as DEST writes SRC as a tar stream to stdout.
//!
//! Ownership: copied into a container, entries belong to root unless
//! `archive` (`-a`) keeps the source's uid/gid; copied out, they belong to
//! the caller. Modes and times are kept.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use vessel_runtime::sys::resolve::open_in_root;

use super::{pipe_into, tree, view, CopyError};
use crate::engine::Engine;
use crate::error::Result;
use vessel_image::apply::WHITEOUT_PREFIX;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A path on the host.
    Host(PathBuf),
    /// `-`: a tar stream on stdin (source) or stdout (destination).
    Stdio,
    /// `CONTAINER:PATH`.
    Container {
        /// Name or id.
        container: String,
        /// Path inside it.
        path: String,
    },
}

impl Endpoint {
    /// docker's reading of a `cp` argument: `-`, `CONTAINER:PATH` (a colon
    /// before any `/`), or a host path.
    pub fn parse(arg: &str) -> Endpoint {
        if arg == "-" {
            return Endpoint::Stdio;
        }
        match arg.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') => Endpoint::Container {
                container: c.to_owned(),
                path: p.to_owned(),
            },
            _ => Endpoint::Host(PathBuf::from(arg)),
        }
    }
}

/// `vessel cp` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-a`: keep uid/gid when copying into the container.
    pub archive: bool,
    /// `-L`: follow a symlink SRC.
    pub follow_link: bool,
}

/// A source, resolved: what it is (an `O_PATH` descriptor, a symlink
/// itself unless `-L`), its name, and whether only its content is copied
/// (`SRC/.`).
struct Source {
    fd: OwnedFd,
    name: OsString,
    contents: bool,
    is_dir: bool,
}

impl Source {
    /// The name its top entry takes when DEST does not rename it.
    fn top(&self) -> PathBuf {
        PathBuf::from(if self.contents {
            ".".into()
        } else {
            self.name.clone()
        })
    }

    /// Archive it as `top` (`.` merges a directory's content).
    fn append<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        top: &Path,
    ) -> std::result::Result<(), CopyError> {
        tree::append_opened(b, self.fd.as_fd(), top)
    }
}

/// Split `path` (inside a root, or on the host) into docker's parts.
fn split(path: &str) -> (PathBuf, OsString, bool, bool) {
    let contents = path.ends_with("/.") || path == "." || path.trim_end_matches('/').is_empty();
    let dir_hint = path.ends_with('/');
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    let p = Path::new(trimmed);
    let name = p
        .file_name()
        .map(OsString::from)
        .unwrap_or_else(|| ".".into());
    let parent = p
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    (
        if trimmed.is_empty() {
            PathBuf::from("/")
        } else {
            parent
        },
        name,
        contents,
        dir_hint,
    )
}

/// Open `path` in `root` (the container's root, or `/` read plainly for
/// the host) as a source.
fn open_source(
    root: Option<BorrowedFd<'_>>,
    path: &str,
    follow: bool,
    side: &'static str,
) -> std::result::Result<Source, CopyError> {
    let (parent, name, contents, dir_hint) = split(path);
    let not_found = || CopyError::NotFound(path.to_owned(), side);
    let open = |p: &Path, flags: i32| -> io::Result<OwnedFd> {
        match root {
            Some(r) => open_in_root(r, p, flags),
            None => open_host(p, flags),
        }
    };
    let full = parent.join(&name);
    let parent_fd = open(&parent, libc::O_PATH | libc::O_DIRECTORY).map_err(|_| not_found())?;
    let flags = if follow || contents {
        libc::O_PATH
    } else {
        libc::O_PATH | libc::O_NOFOLLOW
    };
    let fd = match root {
        // -L (and `DIR/.`): a final symlink is followed, still inside the root.
        Some(r) if follow || contents => open_in_root(r, &full, flags),
        _ => open_in_root(parent_fd.as_fd(), Path::new(&name), flags),
    }
    .map_err(|_| not_found())?;
    let is_dir = File::from(
        fd.try_clone()
            .map_err(|e| CopyError::Read(full.clone(), e))?,
    )
    .metadata()
    .map_err(|e| CopyError::Read(full.clone(), e))?
    .is_dir();
    if (dir_hint || contents) && !is_dir {
        return Err(CopyError::Invalid(format!("{path} is not a directory")));
    }
    Ok(Source {
        fd,
        name,
        contents,
        is_dir,
    })
}

/// Open a host path (trusted: symlinks in it are the user's own) with `flags`.
fn open_host(p: &Path, flags: i32) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(p)
        .map(OwnedFd::from)
}

/// Where an archive lands: the directory to extract into and the name its
/// top entry takes there.
struct Landing {
    dir: OwnedFd,
    top: PathBuf,
}

/// docker's rules for DEST, given what the source is.
fn landing(
    root: Option<BorrowedFd<'_>>,
    dest: &str,
    src: &Source,
) -> std::result::Result<Landing, CopyError> {
    let open = |p: &Path, flags: i32| -> io::Result<OwnedFd> {
        match root {
            Some(r) => open_in_root(r, p, flags),
            None => open_host(p, flags),
        }
    };
    let dest_path = Path::new(if dest.is_empty() { "/" } else { dest });
    if let Ok(dir) = open(dest_path, libc::O_PATH | libc::O_DIRECTORY) {
        return Ok(Landing {
            dir,
            top: src.top(),
        });
    }
    let (parent, name, _, dir_hint) = split(dest);
    let exists = open(dest_path, libc::O_PATH).is_ok();
    if exists && src.is_dir {
        return Err(CopyError::Invalid(format!(
            "cannot copy a directory to the file {dest}"
        )));
    }
    if !exists && dir_hint && !src.is_dir {
        return Err(CopyError::Invalid(format!(
            "the destination directory {dest} does not exist"
        )));
    }
    let dir = open(&parent, libc::O_PATH | libc::O_DIRECTORY).map_err(|_| {
        CopyError::Invalid(format!("the parent directory of {dest} does not exist"))
    })?;
    Ok(Landing {
        dir,
        top: PathBuf::from(name),
    })
}

/// Re-encode a tar stream from a user, refusing entries that the
/// extraction would read as overlay whiteouts.
fn without_whiteouts<R: Read, W: Write>(
    input: R,
    out: &mut tar::Builder<W>,
) -> std::result::Result<(), CopyError> {
    let stdin = Path::new("stdin");
    let mut archive = tar::Archive::new(input);
    for e in archive.entries().map_err(CopyError::read(stdin))? {
        let mut e = e.map_err(CopyError::read(stdin))?;
        let path = e.path().map_err(CopyError::read(stdin))?.into_owned();
        if path.components().any(|c| {
            c.as_os_str()
                .as_encoded_bytes()
                .starts_with(WHITEOUT_PREFIX.as_bytes())
        }) {
            return Err(CopyError::Whiteout(path));
        }
        let mut h = e.header().clone();
        match e.link_name().map_err(CopyError::read(stdin))? {
            Some(link) => {
                let link = link.into_owned();
                out.append_link(&mut h, &path, link)
                    .map_err(CopyError::write(&path))?
            }
            None => out
                .append_data(&mut h, &path, &mut e)
                .map_err(CopyError::write(&path))?,
        }
    }
    Ok(())
}

impl Engine {
    /// `vessel cp SRC DEST`: one side a container, the other the host or `-`.
    pub fn copy(&self, src: &Endpoint, dest: &Endpoint, opts: CopyOptions) -> Result<()> {
        match (src, dest) {
            (Endpoint::Container { container, path }, Endpoint::Host(_) | Endpoint::Stdio) => {
                let record = self.inspect(container)?;
                let out = view::with_root(self, &record, |root| {
                    let source = open_source(Some(root), path, opts.follow_link, "container")?;
                    match dest {
                        Endpoint::Host(host) => {
                            let host = host.to_string_lossy();
                            let land = landing(None, &host, &source)?;
                            pipe_into(
                                |b| source.append(b, &land.top),
                                land.dir.as_fd(),
                                false,
                                &host,
                            )
                        }
                        _ => {
                            let mut b = tar::Builder::new(io::stdout().lock());
                            source.append(&mut b, &source.top())?;
                            b.into_inner()
                                .and_then(|mut w| w.flush())
                                .map_err(CopyError::write(Path::new("stdout")))
                        }
                    }
                });
                Ok(out?)
            }
            (Endpoint::Host(_) | Endpoint::Stdio, Endpoint::Container { container, path }) => {
                let record = self.inspect(container)?;
                let shown = format!("{container}:{path}");
                let out = view::with_root(self, &record, |root| match src {
                    Endpoint::Host(host) => {
                        let source =
                            open_source(None, &host.to_string_lossy(), opts.follow_link, "host")?;
                        let land = landing(Some(root), path, &source)?;
                        pipe_into(
                            |b| source.append(b, &land.top),
                            land.dir.as_fd(),
                            opts.archive,
                            &shown,
                        )
                    }
                    _ => {
                        let dir = open_in_root(root, Path::new(path), libc::O_PATH | libc::O_DIRECTORY)
                            .map_err(|_| CopyError::Invalid(format!(
                                "the destination {path} must be an existing directory when reading a tar from stdin"
                            )))?;
                        let stdin = io::stdin();
                        pipe_into(
                            |b| without_whiteouts(stdin.lock(), b),
                            dir.as_fd(),
                            opts.archive,
                            &shown,
                        )
                    }
                });
                Ok(out?)
            }
            (Endpoint::Container { .. }, Endpoint::Container { .. }) => Err(CopyError::Invalid(
                "copying between containers is not supported (copy through the host)".into(),
            )
            .into()),
            _ => {
                Err(CopyError::Invalid("one of SRC and DEST must be CONTAINER:PATH".into()).into())
            }
        }
    }
}
