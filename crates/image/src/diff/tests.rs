//! A real overlayfs mount makes the upper directory (whiteouts, opaque
//! directories, copy-ups), so these tests check the kernel's format, not a
//! hand-made imitation. They need root (mounts, chown, mknod) and fail
//! without it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::apply::{apply_layer, ApplyOptions};
use crate::mount::{mount_all, unmount};
use crate::snapshot::Mount;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests mount overlayfs and need root"
    );
}

fn sh(script: &str, dir: &Path) {
    let st = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// lower/ with a few files, then `script` run in an overlay of it; the
/// temp dir (lower/, upper/).
fn overlay_with(script: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir(t.join(d)).unwrap();
    }
    sh(
        "mkdir -p etc data/old bin tmp
         echo root > etc/passwd; echo keep > etc/keep
         echo a > data/old/a.txt; echo b > data/old/b.txt
         echo tool > bin/tool; chmod 755 bin/tool; chmod 1777 tmp
         echo bye > gone.txt",
        &t.join("lower"),
    );
    let m = Mount {
        fstype: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            "index=off".into(),
            format!("lowerdir={}", t.join("lower").display()),
            format!("upperdir={}", t.join("upper").display()),
            format!("workdir={}", t.join("work").display()),
        ],
    };
    mount_all(&[m], &t.join("merged")).unwrap();
    let ran = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(t.join("merged"))
        .status();
    unmount(&t.join("merged")).unwrap();
    assert!(ran.unwrap().success(), "{script}");
    tmp
}

const CHANGES: &str = "rm gone.txt
    echo changed > etc/passwd
    rm -r data/old; mkdir data/old; echo new > data/old/new.txt
    mkdir -p added; echo x > added/h1; ln added/h1 added/h2
    ln -s ../etc/passwd added/link
    echo s > added/suid; chown 1234:5678 added/suid; chmod 4755 added/suid
    mkfifo added/fifo
    touch tmp/t";

/// name -> (type, link target, uid, mode) of every tar entry.
fn entries(layer: &[u8]) -> BTreeMap<String, (tar::EntryType, Option<PathBuf>, u64, u32)> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(layer);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let name = name.trim_end_matches('/').to_string();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let k = x.unwrap().key().unwrap().to_string();
                assert!(!k.contains("overlay"), "{name}: {k} leaked");
            }
        }
        let h = e.header().clone();
        let link = e.link_name().unwrap().map(|l| l.into_owned());
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).unwrap();
        out.insert(
            name,
            (h.entry_type(), link, h.uid().unwrap(), h.mode().unwrap()),
        );
    }
    out
}

#[test]
fn whiteouts_and_opaque_dirs_become_oci_markers() {
    require_root();
    let tmp = overlay_with(CHANGES);
    let mut layer = Vec::new();
    let stats = layer_from_upper(&tmp.path().join("upper"), &mut layer).unwrap();
    let e = entries(&layer);
    assert_eq!(e[".wh.gone.txt"].0, tar::EntryType::Regular);
    assert_eq!(e["data/old/.wh..wh..opq"].0, tar::EntryType::Regular);
    assert!(e.contains_key("data/old/new.txt"));
    assert!(!e.contains_key("gone.txt") && !e.contains_key("data/old/a.txt"));
    assert!(
        !e.contains_key("etc/keep"),
        "unchanged lower files stay out"
    );
    assert_eq!(e["added/h2"].0, tar::EntryType::Link);
    assert_eq!(e["added/h2"].1.as_deref(), Some(Path::new("added/h1")));
    assert_eq!(e["added/link"].0, tar::EntryType::Symlink);
    assert_eq!(e["added/suid"].2, 1234);
    assert_eq!(e["added/suid"].3, 0o4755);
    assert_eq!(e["added/fifo"].0, tar::EntryType::Fifo);
    assert_eq!(e["tmp"].3, 0o1777, "a copied-up parent keeps its mode");
    assert_eq!(stats.whiteouts, 2);

    // The same upper gives the same bytes (so the same digest).
    let mut again = Vec::new();
    layer_from_upper(&tmp.path().join("upper"), &mut again).unwrap();
    assert_eq!(layer, again);
}

#[test]
fn the_layer_applied_on_the_lower_gives_the_merged_view() {
    require_root();
    let tmp = overlay_with(CHANGES);
    let mut layer = Vec::new();
    layer_from_upper(&tmp.path().join("upper"), &mut layer).unwrap();
    let target = tmp.path().join("target");
    sh(&format!("cp -a lower {}", target.display()), tmp.path());
    apply_layer(
        layer.as_slice(),
        &target,
        &ApplyOptions {
            same_owner: true,
            expected_diff_id: None,
        },
    )
    .unwrap();
    assert!(!target.join("gone.txt").exists());
    let old: Vec<_> = fs::read_dir(target.join("data/old"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(old, ["new.txt"]);
    assert_eq!(
        fs::read_to_string(target.join("etc/passwd")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        fs::read_to_string(target.join("etc/keep")).unwrap(),
        "keep\n"
    );
    let suid = fs::metadata(target.join("added/suid")).unwrap();
    assert_eq!((suid.uid(), suid.gid()), (1234, 5678));
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(
        fs::read_link(target.join("added/link")).unwrap(),
        Path::new("../etc/passwd")
    );
    let (h1, h2) = (
        fs::metadata(target.join("added/h1")).unwrap(),
        fs::metadata(target.join("added/h2")).unwrap(),
    );
    assert_eq!(h1.ino(), h2.ino(), "hard links stay linked");
}

#[test]
fn changes_list_added_changed_deleted() {
    require_root();
    let tmp = overlay_with("rm gone.txt; echo c > etc/passwd; mkdir new; echo n > new/f");
    let got: Vec<(char, String)> = changes(&tmp.path().join("upper"), &[tmp.path().join("lower")])
        .unwrap()
        .into_iter()
        .map(|c| (c.kind.letter(), c.path.display().to_string()))
        .collect();
    let want: Vec<(char, String)> = [
        ('C', "/etc"),
        ('C', "/etc/passwd"),
        ('D', "/gone.txt"),
        ('A', "/new"),
        ('A', "/new/f"),
    ]
    .iter()
    .map(|(k, p)| (*k, p.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn changes_under_an_opaque_dir_are_added() {
    require_root();
    let tmp = overlay_with("rm -r data/old; mkdir data/old; echo x > data/old/a.txt");
    let got = changes(&tmp.path().join("upper"), &[tmp.path().join("lower")]).unwrap();
    let kind = |p: &str| got.iter().find(|c| c.path == Path::new(p)).unwrap().kind;
    assert_eq!(kind("/data/old"), ChangeKind::Changed);
    // The lower a.txt went with the old directory: this one is new.
    assert_eq!(kind("/data/old/a.txt"), ChangeKind::Added);
}

#[test]
fn a_redirected_directory_is_refused() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    set_xattr(&tmp.path().join("d"), "trusted.overlay.redirect", b"/x");
    let err = layer_from_upper(tmp.path(), Vec::new()).unwrap_err();
    assert!(matches!(err, DiffError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("redirect_dir"), "{err}");
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated; `value` is valid for its length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}
