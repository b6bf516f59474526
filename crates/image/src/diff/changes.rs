//! What a writable layer changed, as `docker diff` lists it.

use std::path::{Path, PathBuf};

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{walk, DiffError, NodeKind};

/// The kind of a change (`docker diff`'s letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `A`: not in the lower layers.
    Added,
    /// `C`: in the lower layers, changed (or a directory whose content changed).
    Changed,
    /// `D`: in the lower layers, deleted.
    Deleted,
}

impl ChangeKind {
    /// docker's letter: `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute path inside the container (`/etc/passwd`).
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// The changes of the upper directory `upper` over its lower layers
/// `lowers` (the committed snapshots' `fs` directories, topmost first, as
/// overlayfs stacks them), parents before children. An entry of the upper
/// that some lower layer shows is `C`, otherwise `A`; a whiteout is `D`.
/// Lowers are only looked at, never followed through symlinks.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, DiffError> {
    let mut out = Vec::new();
    // Opaque directories of the upper: the lowers have nothing below them.
    let mut opaque: Vec<PathBuf> = Vec::new();
    walk(upper, &mut |node| {
        let hidden = opaque.iter().any(|o| node.rel.starts_with(o));
        let kind = match node.kind {
            NodeKind::Whiteout => ChangeKind::Deleted,
            _ if !hidden && in_lowers(lowers, &node.rel) => ChangeKind::Changed,
            _ => ChangeKind::Added,
        };
        if node.kind == (NodeKind::Dir { opaque: true }) {
            opaque.push(node.rel.clone());
        }
        out.push(Change {
            path: Path::new("/").join(&node.rel),
            kind,
        });
        Ok(())
    })?;
    Ok(out)
}

/// Whether the merged view of `lowers` has `rel`.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for lower in lowers {
        match lookup(lower, rel) {
            Lookup::Present => return true,
            Lookup::Hidden => return false,
            Lookup::Absent => {}
        }
    }
    false
}

enum Lookup {
    /// The layer has it.
    Present,
    /// The layer deletes it, or an opaque directory above it hides the
    /// layers below.
    Hidden,
    /// Look further down.
    Absent,
}

/// Look `rel` up in one layer directory, one component at a time without
/// following symlinks (a symlink in the path means the layer has no
/// directory there).
fn lookup(layer: &Path, rel: &Path) -> Lookup {
    let mut cur = layer.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let Ok(m) = std::fs::symlink_metadata(&cur) else {
            return Lookup::Absent;
        };
        let last = i + 1 == comps.len();
        if m.file_type().is_char_device() && m.rdev() == 0 {
            return Lookup::Hidden;
        }
        if last {
            return Lookup::Present;
        }
        if !m.is_dir() {
            return Lookup::Absent;
        }
        let opaque = super::xattr::get(&cur, std::ffi::OsStr::new("trusted.overlay.opaque"))
            .ok()
            .flatten();
        if opaque.as_deref() == Some(b"y") {
            // Whatever is below this directory in lower layers is hidden;
            // the next component is either here or nowhere.
            let rest: PathBuf = comps[i + 1..].iter().collect();
            return match lookup(&cur, &rest) {
                Lookup::Present => Lookup::Present,
                Lookup::Hidden | Lookup::Absent => Lookup::Hidden,
            };
        }
    }
    Lookup::Absent
}
