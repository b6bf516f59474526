//! A writable overlayfs layer (the *upper* directory of an active snapshot)
//! as an OCI layer, and as a list of changes.
//!
//! overlayfs records a deletion as a character device 0/0 with the deleted
//! name, and a directory that replaced a lower one (hiding all its lower
//! content) by the xattr `trusted.overlay.opaque = "y"`. OCI layers say the
//! same with files: `.wh.NAME` beside the deleted entry and `.wh..wh..opq`
//! inside an opaque directory. [`layer_from_upper`] translates the one into
//! the other; [`changes`] lists what `vessel diff` prints (A/C/D).
//!
//! The upper directory must not change while it is read (the container is
//! stopped). It is walked without following symlinks, in name order, so the
//! same tree always gives the same bytes (and digest). Used by `vessel
//! build` (each RUN/COPY step), and meant for `commit` and `diff`.

mod changes;
mod xattr;

pub use changes::{changes, Change, ChangeKind};

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::apply::{WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// Failures of reading an upper directory or writing its layer.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file of the upper directory could not be read.
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
    /// An overlayfs feature whose meaning cannot be carried by an OCI layer
    /// (a renamed directory with `redirect_dir`, a metadata-only copy-up).
    #[error(
        "{path} uses overlayfs {feature}, which vessel cannot turn into a layer (mount without it)"
    )]
    Unsupported {
        /// The entry.
        path: PathBuf,
        /// Which feature.
        feature: &'static str,
    },
    /// The layer could not be written out.
    #[error("Cannot write the layer tar")]
    Write(#[source] io::Error),
}

/// What went into a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries, whiteouts included.
    pub entries: u64,
    /// Of which whiteouts (`.wh.NAME` and `.wh..wh..opq`).
    pub whiteouts: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
}

/// xattrs overlayfs keeps for itself: never copied into a layer.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// One entry of the upper directory.
pub(crate) struct Node {
    /// The path on the host.
    pub(crate) path: PathBuf,
    /// The path inside the layer (relative, no leading `/`).
    pub(crate) rel: PathBuf,
    pub(crate) meta: Metadata,
    pub(crate) kind: NodeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// overlayfs's deletion mark (char device 0/0).
    Whiteout,
    /// A directory; `opaque` hides everything below it in lower layers.
    Dir { opaque: bool },
    /// Anything else (file, symlink, device, FIFO, socket).
    Other,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DiffError {
    let path = path.to_path_buf();
    move |source| DiffError::Io { op, path, source }
}

/// Visit every entry under `upper` (not `upper` itself), parents before
/// children, siblings in byte order of their names.
pub(crate) fn walk(
    upper: &Path,
    visit: &mut dyn FnMut(&Node) -> Result<(), DiffError>,
) -> Result<(), DiffError> {
    walk_dir(upper, Path::new(""), visit)
}

fn walk_dir(
    dir: &Path,
    rel: &Path,
    visit: &mut dyn FnMut(&Node) -> Result<(), DiffError>,
) -> Result<(), DiffError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("list", dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let ft = meta.file_type();
        let kind = if ft.is_char_device() && meta.rdev() == 0 {
            NodeKind::Whiteout
        } else if ft.is_dir() {
            NodeKind::Dir {
                opaque: overlay_attr(&path, "opaque")?.as_deref() == Some(b"y"),
            }
        } else {
            NodeKind::Other
        };
        if ft.is_dir() && overlay_attr(&path, "redirect")?.is_some() {
            return Err(DiffError::Unsupported {
                path,
                feature: "redirect_dir (a renamed directory)",
            });
        }
        if ft.is_file() && overlay_attr(&path, "metacopy")?.is_some() {
            return Err(DiffError::Unsupported {
                path,
                feature: "metacopy (a metadata-only copy-up)",
            });
        }
        let node = Node {
            rel: rel.join(&name),
            path,
            meta,
            kind,
        };
        visit(&node)?;
        if let NodeKind::Dir { .. } = node.kind {
            walk_dir(&node.path, &node.rel, visit)?;
        }
    }
    Ok(())
}

/// overlayfs's own xattr `trusted.overlay.NAME` of `path`.
fn overlay_attr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, DiffError> {
    xattr::get(
        path,
        std::ffi::OsStr::new(&format!("trusted.overlay.{name}")),
    )
    .map_err(io_err("read the xattrs of", path))
}

/// Write the OCI layer (an uncompressed tar) of the upper directory `upper`
/// into `out`: every entry with its owner, mode, mtime and xattrs (minus
/// overlayfs's own), hard links within the layer as links, whiteouts as
/// `.wh.NAME` files and opaque directories with a `.wh..wh..opq` marker.
/// Compress `out` if a compressed layer is wanted.
pub fn layer_from_upper(upper: &Path, out: impl Write) -> Result<LayerStats, DiffError> {
    let mut tar = tar::Builder::new(out);
    let mut stats = LayerStats::default();
    // (dev, ino) of files with several links -> the first path written.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(upper, &mut |node| {
        write_node(&mut tar, node, &mut links, &mut stats)
    })?;
    tar.into_inner().map_err(DiffError::Write)?;
    Ok(stats)
}

fn write_node<W: Write>(
    tar: &mut tar::Builder<W>,
    node: &Node,
    links: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut LayerStats,
) -> Result<(), DiffError> {
    let m = &node.meta;
    let ft = m.file_type();
    stats.entries += 1;
    if node.kind == NodeKind::Whiteout {
        let mut name = std::ffi::OsString::from(WHITEOUT_PREFIX);
        name.push(node.rel.file_name().unwrap_or_default());
        let wh = node.rel.with_file_name(name);
        stats.whiteouts += 1;
        return append_empty(tar, &wh, m);
    }
    let mut h = header(m);
    let xattrs: Vec<(String, Vec<u8>)> = xattr::list(&node.path)
        .map_err(io_err("read the xattrs of", &node.path))?
        .into_iter()
        .filter(|(k, _)| !OVERLAY_XATTR_PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v))
        .collect();
    if !xattrs.is_empty() {
        tar.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(DiffError::Write)?;
    }
    if let NodeKind::Dir { opaque } = node.kind {
        h.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut h, &node.rel, io::empty())
            .map_err(DiffError::Write)?;
        if opaque {
            stats.entries += 1;
            stats.whiteouts += 1;
            append_empty(tar, &node.rel.join(WHITEOUT_OPAQUE), m)?;
        }
        return Ok(());
    }
    if !ft.is_dir() && m.nlink() > 1 {
        if let Some(first) = links.get(&(m.dev(), m.ino())) {
            h.set_entry_type(tar::EntryType::Link);
            return tar
                .append_link(&mut h, &node.rel, first)
                .map_err(DiffError::Write);
        }
        links.insert((m.dev(), m.ino()), node.rel.clone());
    }
    if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(m.len());
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&node.path)
            .map_err(io_err("open", &node.path))?;
        // A file that changes size meanwhile would make a corrupt tar;
        // `take` + the header's size keep the entry consistent, and a
        // shrunk file fails the write.
        stats.content_bytes += m.len();
        tar.append_data(&mut h, &node.rel, io::Read::take(f, m.len()))
            .map_err(DiffError::Write)
    } else if ft.is_symlink() {
        let target = fs::read_link(&node.path).map_err(io_err("read the link", &node.path))?;
        h.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut h, &node.rel, target)
            .map_err(DiffError::Write)
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        h.set_entry_type(if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        });
        let rdev = m.rdev();
        h.set_device_major(libc::major(rdev))
            .map_err(DiffError::Write)?;
        h.set_device_minor(libc::minor(rdev))
            .map_err(DiffError::Write)?;
        tar.append_data(&mut h, &node.rel, io::empty())
            .map_err(DiffError::Write)
    } else {
        // Sockets have no tar form (docker skips them too).
        stats.entries -= 1;
        Ok(())
    }
}

fn header(m: &Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// An empty regular file (a whiteout marker), dated like `like`.
fn append_empty<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    like: &Metadata,
) -> Result<(), DiffError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(like.mtime().max(0) as u64);
    h.set_size(0);
    tar.append_data(&mut h, path, io::empty())
        .map_err(DiffError::Write)
}

#[cfg(test)]
mod tests;
