//! Where blobs came from: `<store root>/registry-sources`, lines of
//! `sha256:<hex> <registry>/<repository>`, appended after each pull and
//! push. A push to the same registry finds another repository that has the
//! blob and asks for a cross-repository mount instead of uploading it.
//!
//! The file is a hint: a failure to write it never fails a pull, a line
//! that does not parse is skipped, and a stale line only costs a mount
//! request that the registry answers with "upload it".

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use vessel_image::{Digest, Reference};

const FILE: &str = "registry-sources";
/// Read at most this much of the file.
const MAX_READ: u64 = 16 << 20;

/// Remember that `name` (`registry/repository`) has these blobs.
pub(crate) fn record(root: &Path, name: &str, digests: &[Digest]) {
    let mut text = String::new();
    for d in digests {
        text.push_str(&format!("{d} {name}\n"));
    }
    // One write with O_APPEND: concurrent writers do not interleave lines.
    let _ = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(FILE))
        .and_then(|mut f| f.write_all(text.as_bytes()));
}

/// A repository other than `except` on `registry` known to have `digest`
/// (the most recently recorded one).
pub(crate) fn find(root: &Path, registry: &str, digest: &Digest, except: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(root.join(FILE))
        .ok()?
        .take(MAX_READ)
        .read_to_string(&mut text)
        .ok()?;
    let want = digest.to_string();
    text.lines().rev().find_map(|line| {
        let (d, name) = line.split_once(' ')?;
        if d != want {
            return None;
        }
        let r = Reference::parse(name).ok()?;
        (r.registry() == registry && r.repository() != except).then(|| r.repository().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_another_repository_on_the_same_registry() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::of(b"layer");
        assert_eq!(find(dir.path(), "r:1", &d, "a"), None);
        record(dir.path(), "r:1/a", std::slice::from_ref(&d));
        assert_eq!(find(dir.path(), "r:1", &d, "a"), None);
        record(dir.path(), "other:2/b", std::slice::from_ref(&d));
        assert_eq!(find(dir.path(), "r:1", &d, "a"), None);
        record(dir.path(), "r:1/team/b", std::slice::from_ref(&d));
        assert_eq!(find(dir.path(), "r:1", &d, "a").as_deref(), Some("team/b"));
        assert_eq!(find(dir.path(), "r:1", &Digest::of(b"x"), "a"), None);
        // Junk lines are skipped.
        std::fs::write(
            dir.path().join(FILE),
            format!("garbage\n{d} r:1/Bad Name\n{d} r:1/ok\n{d}\n"),
        )
        .unwrap();
        assert_eq!(find(dir.path(), "r:1", &d, "a").as_deref(), Some("ok"));
    }
}
