//! Layer application: formats, metadata, whiteouts, and every hostile layer
//! we know of. Runs as root (owners, devices).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{fingerprint, gzip, require_root, zstd, Layer};
use vessel_image::apply::{apply_layer, diff_id, ApplyError, ApplyOptions};
use vessel_image::Digest;

fn apply(tar: &[u8], target: &Path) -> Result<vessel_image::apply::Applied, ApplyError> {
    apply_layer(tar, target, &ApplyOptions::default())
}

/// A target root and a sibling "outside" directory holding a secret.
struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    before: Vec<String>,
}

impl Scene {
    fn new() -> Self {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "keep").unwrap();
        let before = fingerprint(&outside);
        Scene {
            _tmp: tmp,
            root,
            outside,
            before,
        }
    }

    fn outside_str(&self) -> String {
        self.outside.display().to_string()
    }

    /// Nothing outside the root changed, and nothing new appeared beside it.
    fn assert_outside_untouched(&self) {
        assert_eq!(fingerprint(&self.outside), self.before, "outside changed");
        let siblings: Vec<_> = std::fs::read_dir(self.root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut siblings = siblings;
        siblings.sort();
        assert_eq!(
            siblings,
            ["outside", "root"],
            "something was written beside the root"
        );
    }
}

#[test]
fn plain_gzip_and_zstd_give_the_same_tree_and_diff_id() {
    require_root();
    let tar = Layer::new()
        .dir("etc/", 0o755)
        .file_owned(
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\n",
            0o640,
            1234,
            5678,
        )
        .file_owned("bin/su", "suid", 0o4755, 0, 0)
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/su2", "bin/su")
        .device("dev/null", tar::EntryType::Char, 1, 3)
        .device("dev/fifo", tar::EntryType::Fifo, 0, 0)
        .file_xattrs(
            "xattr",
            "x",
            &[("user.vessel", "yes"), ("trusted.overlay.opaque", "y")],
        )
        .dir("d/", 0o1777)
        .tar();
    let expected = Digest::of(&tar);
    let mut trees = Vec::new();
    for blob in [tar.clone(), gzip(&tar), zstd(&tar)] {
        assert_eq!(diff_id(blob.as_slice()).unwrap(), expected);
        let dir = tempfile::tempdir().unwrap();
        let applied = apply(&blob, dir.path()).unwrap();
        assert_eq!(applied.diff_id, expected);
        let r = dir.path();
        let m = std::fs::metadata(r.join("etc/passwd")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1234, 5678));
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::metadata(r.join("bin/su")).unwrap().mode() & 0o7777,
            0o4755
        );
        assert_eq!(
            std::fs::read_link(r.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            std::fs::metadata(r.join("bin/su2")).unwrap().ino(),
            std::fs::metadata(r.join("bin/su")).unwrap().ino()
        );
        let null = std::fs::symlink_metadata(r.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert!(std::fs::symlink_metadata(r.join("dev/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            std::fs::metadata(r.join("d")).unwrap().mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            std::fs::metadata(r.join("d")).unwrap().mtime(),
            1_600_000_000
        );
        assert_eq!(
            xattr(&r.join("xattr"), "user.vessel").as_deref(),
            Some(&b"yes"[..])
        );
        assert_eq!(xattr(&r.join("xattr"), "trusted.overlay.opaque"), None);
        trees.push(fingerprint(r));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: lgetxattr with NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

#[test]
fn whiteouts_and_opaque_dirs_remove_lower_content() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let lower = Layer::new()
        .file("a", "a")
        .file("keep", "k")
        .dir("d/", 0o755)
        .file("d/x", "x")
        .dir("d/sub/", 0o755)
        .file("d/sub/y", "y")
        .dir("o/", 0o755)
        .file("o/old", "old")
        .dir("o/deep/", 0o755)
        .file("o/deep/old", "old")
        .tar();
    apply(&lower, r).unwrap();
    let upper = Layer::new()
        .file(".wh.a", "")
        .file("d/.wh.sub", "")
        .dir("o/", 0o755)
        .file("o/.wh..wh..opq", "")
        .dir("o/deep/", 0o755)
        .file("o/deep/new", "new")
        .file("o/new", "new")
        .file(".wh.missing", "")
        .file("nodir/.wh.x", "")
        .tar();
    apply(&upper, r).unwrap();
    assert!(!r.join("a").exists());
    assert!(r.join("keep").exists());
    assert!(r.join("d/x").exists());
    assert!(!r.join("d/sub").exists());
    assert!(!r.join("o/old").exists());
    assert!(
        !r.join("o/deep/old").exists(),
        "opaque hides lower content of kept subdirs"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("o/deep/new")).unwrap(),
        "new"
    );
    assert_eq!(std::fs::read_to_string(r.join("o/new")).unwrap(), "new");
    assert!(!r.join("nodir").exists(), "a whiteout creates nothing");
}

#[test]
fn dotdot_paths_are_refused() {
    for path in ["../escape", "a/../../escape", "./../../outside/secret"] {
        let s = Scene::new();
        let tar = Layer::new().file(path, "pwned").tar();
        let e = apply(&tar, &s.root).unwrap_err();
        assert!(matches!(e, ApplyError::Path(_)), "{path}: {e}");
        s.assert_outside_untouched();
    }
}

#[test]
fn absolute_paths_stay_inside() {
    let s = Scene::new();
    let abs = format!("{}/secret", s.outside_str());
    let tar = Layer::new().file(&abs, "pwned").file("/etc/x", "x").tar();
    apply(&tar, &s.root).unwrap();
    s.assert_outside_untouched();
    let inside = s.root.join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "pwned");
    assert!(s.root.join("etc/x").is_file());
}

#[test]
fn symlink_parent_to_outside_is_contained() {
    // Absolute, relative-climbing and to-root symlinks, used as parents.
    let s = Scene::new();
    let abs = s.outside_str();
    let tar = Layer::new()
        .dir("outside/", 0o755)
        .symlink("abs", &abs)
        .symlink("rel", "../../../../../../../../outside")
        .symlink("up", "../../../../../..")
        .file("rel/secret", "pwned")
        .file("up/outside/secret", "pwned")
        .file("up/file", "f")
        .tar();
    apply(&tar, &s.root).unwrap();
    s.assert_outside_untouched();
    // `rel` resolves to <root>/outside, `up` to <root>.
    assert_eq!(
        std::fs::read_to_string(s.root.join("outside/secret")).unwrap(),
        "pwned"
    );
    assert!(s.root.join("file").is_file());
    // A dangling symlink into a path that only exists outside is refused as a parent.
    let tar = Layer::new().file("abs/secret", "pwned").tar();
    assert!(apply(&tar, &s.root).is_err());
    s.assert_outside_untouched();
}

#[test]
fn symlink_from_a_lower_layer_is_contained() {
    let s = Scene::new();
    let abs = s.outside_str();
    apply(&Layer::new().symlink("etc", &abs).tar(), &s.root).unwrap();
    // Make the absolute target exist inside the root too: the upper layer's
    // file must land there, not in the real outside directory.
    std::fs::create_dir_all(s.root.join(abs.trim_start_matches('/'))).unwrap();
    apply(&Layer::new().file("etc/secret", "pwned").tar(), &s.root).unwrap();
    s.assert_outside_untouched();
    let inside = s.root.join(abs.trim_start_matches('/')).join("secret");
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "pwned");
}

#[test]
fn entries_replace_symlinks_instead_of_following_them() {
    let s = Scene::new();
    let secret = format!("{}/secret", s.outside_str());
    let tar = Layer::new()
        .symlink("f", &secret)
        .file("f", "replaced")
        .symlink("d", &s.outside_str())
        .dir("d/", 0o777)
        .symlink("n", &secret)
        .device("n", tar::EntryType::Fifo, 0, 0)
        .tar();
    apply(&tar, &s.root).unwrap();
    s.assert_outside_untouched();
    assert_eq!(
        std::fs::read_to_string(s.root.join("f")).unwrap(),
        "replaced"
    );
    assert!(std::fs::symlink_metadata(s.root.join("d"))
        .unwrap()
        .is_dir());
}

#[test]
fn hard_links_to_outside_are_refused() {
    let s = Scene::new();
    let secret = format!("{}/secret", s.outside_str());
    for target in ["../outside/secret", "../../outside/secret"] {
        let e = apply(&Layer::new().hardlink("l", target).tar(), &s.root).unwrap_err();
        assert!(matches!(e, ApplyError::Path(_)), "{target}: {e}");
    }
    // Absolute target: read inside the root, where it does not exist.
    let e = apply(&Layer::new().hardlink("l", &secret).tar(), &s.root).unwrap_err();
    assert!(matches!(e, ApplyError::HardLink { .. }), "{e}");
    // Through a symlink to outside: resolved inside the root, not found.
    let tar = Layer::new()
        .symlink("evil", &s.outside_str())
        .hardlink("l2", "evil/secret")
        .tar();
    let e = apply(&tar, &s.root).unwrap_err();
    assert!(matches!(e, ApplyError::HardLink { .. }), "{e}");
    s.assert_outside_untouched();
    assert!(!s.root.join("l").exists() && !s.root.join("l2").exists());
    // Sanity: the outside file still has one link.
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
}

#[test]
fn hostile_whiteouts_are_refused_or_contained() {
    let s = Scene::new();
    // `../.wh.outside`: a parent path in a whiteout.
    let e = apply(&Layer::new().file("../.wh.outside", "").tar(), &s.root).unwrap_err();
    assert!(matches!(e, ApplyError::Path(_)), "{e}");
    // `.wh...` names the parent directory itself.
    let e = apply(&Layer::new().file("a/.wh...", "").tar(), &s.root).unwrap_err();
    assert!(matches!(e, ApplyError::BadWhiteout(_)), "{e}");
    let e = apply(&Layer::new().file(".wh.", "").tar(), &s.root).unwrap_err();
    assert!(matches!(e, ApplyError::BadWhiteout(_)), "{e}");
    // A whiteout and an opaque marker through a symlink to outside.
    let tar = Layer::new()
        .symlink("evil", &s.outside_str())
        .file("evil/.wh.secret", "")
        .file("evil/.wh..wh..opq", "")
        .symlink("up", "../../..")
        .file("up/.wh.outside", "")
        .tar();
    apply(&tar, &s.root).unwrap();
    s.assert_outside_untouched();
}

#[test]
fn corrupt_archives_and_wrong_diff_ids_fail() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let tar = Layer::new().file("a", "a").tar();
    let opts = ApplyOptions {
        expected_diff_id: Some(Digest::of(b"other")),
        ..Default::default()
    };
    let e = apply_layer(tar.as_slice(), dir.path(), &opts).unwrap_err();
    assert!(matches!(e, ApplyError::DiffId { .. }), "{e}");
    let gz = gzip(&tar);
    let e = apply(&gz[..gz.len() / 2], dir.path()).unwrap_err();
    assert!(matches!(e, ApplyError::Read(_)), "{e}");
}
