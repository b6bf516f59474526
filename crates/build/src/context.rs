//! COPY/ADD sources: which files a source names, read safely.
//!
//! From the build context, a source is a path or a pattern relative to the
//! context directory. A source that climbs out (`../x`, `a/../../x`) or
//! whose path goes through a symlink leading out of the context is refused
//! (the check is on the fully resolved path, so a symlink to `/etc` or to
//! `..` is caught). Files `.dockerignore` excludes are invisible. Inside a
//! copied directory symlinks are copied as symlinks, never followed.
//!
//! From another stage or an image (`--from`), the source is resolved inside
//! that image's root as the kernel would with it as `/` (symlinks and `..`
//! stay inside), with no ignore rules.

use std::fs::{self, Metadata};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::dockerignore::{clean, Ignore};
use crate::pattern::{has_wildcards, Pattern, PatternError};

/// Why a source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The path climbs out of the context.
    #[error("Source {0:?} is outside the build context")]
    Outside(String),
    /// The path goes through a symlink that leads out of the context.
    #[error("Source {source_path:?} leads out of the build context (it resolves to {resolved})")]
    SymlinkOutside {
        /// As written.
        source_path: String,
        /// Where it leads.
        resolved: PathBuf,
    },
    /// Nothing there (or only excluded files).
    #[error("Source {0:?} not found in the build context (or excluded by .dockerignore)")]
    NotFound(String),
    /// Nothing there in the stage or image copied from.
    #[error("Source {0:?} not found in the image copied from")]
    NotInImage(String),
    /// A bad pattern.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// A file could not be read.
    #[error("Cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContextError {
    let path = path.to_path_buf();
    move |source| ContextError::Io { op, path, source }
}

/// Where sources are read from.
#[derive(Debug, Clone, Copy)]
pub enum Root<'a> {
    /// The build context (canonical directory) and its ignore rules.
    Context {
        /// The directory, canonicalized.
        dir: &'a Path,
        /// `.dockerignore`.
        ignore: &'a Ignore,
    },
    /// A mounted image (`--from`).
    Image {
        /// Its mount point.
        dir: &'a Path,
    },
}

/// One selected source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Root-relative path (cleaned, `/`-separated; empty for the root).
    pub rel: String,
    /// Where it is on the host (symlinks of the source path resolved).
    pub host: PathBuf,
    /// Metadata of what `host` is.
    pub meta: Metadata,
}

impl Source {
    /// The file name a copied file gets in a destination directory.
    pub fn name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or("")
    }
}

/// One file, directory or link to copy.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the source (empty: the source file itself).
    pub rel: PathBuf,
    /// On the host.
    pub host: PathBuf,
    /// Its metadata (not following a symlink).
    pub meta: Metadata,
}

/// Clean `src` for the context: `None` if it climbs out.
fn clean_checked(src: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in src.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

/// The sources `src` names in `root`.
pub fn select(root: Root<'_>, src: &str) -> Result<Vec<Source>, ContextError> {
    let cleaned = match root {
        Root::Context { .. } => {
            clean_checked(src).ok_or_else(|| ContextError::Outside(src.to_string()))?
        }
        Root::Image { .. } => clean(src),
    };
    let not_found = || match root {
        Root::Context { .. } => ContextError::NotFound(src.to_string()),
        Root::Image { .. } => ContextError::NotInImage(src.to_string()),
    };
    if !has_wildcards(&cleaned) {
        return Ok(vec![resolve(root, src, &cleaned)?.ok_or_else(not_found)?]);
    }
    let pattern = Pattern::new(&cleaned, false)?;
    let segs: Vec<&str> = cleaned.split('/').collect();
    let literal = segs.iter().take_while(|s| !has_wildcards(s)).count();
    let base = segs[..literal].join("/");
    let Some(base_src) = resolve(root, src, &base)? else {
        return Err(not_found());
    };
    let mut found = Vec::new();
    let mut frontier = vec![(base.clone(), base_src.host.clone())];
    for _ in literal..segs.len() {
        let mut next = Vec::new();
        for (rel, host) in frontier {
            let Ok(list) = fs::read_dir(&host) else {
                continue;
            };
            let mut names: Vec<_> = list.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort();
            for n in names {
                let n = n.to_string_lossy().into_owned();
                let r = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                next.push((r.clone(), host.join(r.rsplit('/').next().unwrap_or(""))));
            }
        }
        frontier = next;
    }
    for (rel, _) in frontier {
        if pattern.matches(&rel) {
            if let Some(s) = resolve(root, src, &rel)? {
                found.push(s);
            }
        }
    }
    if found.is_empty() {
        return Err(not_found());
    }
    Ok(found)
}

/// A cleaned root-relative path to a source (`None`: not there, or excluded).
fn resolve(root: Root<'_>, src: &str, rel: &str) -> Result<Option<Source>, ContextError> {
    let host = match root {
        Root::Context { dir, ignore } => {
            if !rel.is_empty() && ignore.excluded(rel) {
                return Ok(None);
            }
            let joined = dir.join(rel);
            let resolved = match fs::canonicalize(&joined) {
                Ok(p) => p,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("resolve", &joined)(e)),
            };
            if !resolved.starts_with(dir) {
                return Err(ContextError::SymlinkOutside {
                    source_path: src.to_string(),
                    resolved,
                });
            }
            resolved
        }
        Root::Image { dir } => {
            let f = fs::File::open(dir).map_err(io_err("open", dir))?;
            let inside = vessel_runtime::sys::resolve::resolve_in_root(f.as_fd(), Path::new(rel))
                .map_err(io_err("resolve", &dir.join(rel)))?;
            dir.join(inside)
        }
    };
    match fs::symlink_metadata(&host) {
        Ok(meta) => Ok(Some(Source {
            rel: rel.to_string(),
            host,
            meta,
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("stat", &host)(e)),
    }
}

/// What copying `source` copies: the file itself, or everything below the
/// directory (not the directory itself), parents first, in name order.
pub fn entries(root: Root<'_>, source: &Source) -> Result<Vec<Entry>, ContextError> {
    if !source.meta.is_dir() {
        return Ok(vec![Entry {
            rel: PathBuf::new(),
            host: source.host.clone(),
            meta: source.meta.clone(),
        }]);
    }
    let mut out = Vec::new();
    walk(root, &source.host, &source.rel, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(
    root: Root<'_>,
    dir: &Path,
    ctx_rel: &str,
    rel: &Path,
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("list", dir))?;
    names.sort();
    for name in names {
        let host = dir.join(&name);
        let n = name.to_string_lossy();
        let crel = if ctx_rel.is_empty() {
            n.to_string()
        } else {
            format!("{ctx_rel}/{n}")
        };
        let meta = fs::symlink_metadata(&host).map_err(io_err("stat", &host))?;
        let excluded = match root {
            Root::Context { ignore, .. } => ignore.excluded(&crel),
            Root::Image { .. } => false,
        };
        let exceptions = matches!(root, Root::Context { ignore, .. } if ignore.has_exceptions());
        if excluded && !(meta.is_dir() && exceptions) {
            continue;
        }
        let r = rel.join(&name);
        let is_dir = meta.is_dir();
        if !excluded {
            out.push(Entry {
                rel: r.clone(),
                host: host.clone(),
                meta,
            });
        }
        if is_dir {
            walk(root, &host, &crel, &r, out)?;
        }
    }
    Ok(())
}

/// A digest of what a COPY would copy: paths, types, modes, sizes, link
/// targets and contents (not owners, which COPY sets, nor times).
pub fn digest(sources: &[(Source, Vec<Entry>)]) -> Result<String, ContextError> {
    let mut h = Sha256::new();
    for (s, entries) in sources {
        h.update(format!("source {}\n", s.rel));
        for e in entries {
            let ft = e.meta.file_type();
            let kind = if ft.is_dir() {
                'd'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_file() {
                'f'
            } else if ft.is_fifo() {
                'p'
            } else {
                'o'
            };
            h.update(format!(
                "{} {kind} {:o} {} ",
                e.rel.display(),
                e.meta.mode() & 0o7777,
                e.meta.len()
            ));
            if ft.is_symlink() {
                let t = fs::read_link(&e.host).map_err(io_err("read the link", &e.host))?;
                h.update(t.as_os_str().as_encoded_bytes());
            } else if ft.is_file() {
                let mut f = fs::File::open(&e.host).map_err(io_err("read", &e.host))?;
                io::copy(&mut f, &mut h).map_err(io_err("read", &e.host))?;
            }
            h.update(b"\n");
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests;
