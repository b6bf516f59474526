//! `import` end to end: a busybox rootfs tarball (plain, gzip, zstd)
//! becomes a one-layer image that unpacks and runs; bad input changes
//! nothing.

mod common;

use common::{busybox_rootfs, gzip, require_root, store_listing, zstd, Layer};
use vessel_image::import::{import, ImportError, ImportOptions};
use vessel_image::manifest::Platform;
use vessel_image::{Digest, ImageStore, Reference};

fn opts(name: Option<&str>, changes: &[&str]) -> ImportOptions {
    ImportOptions {
        changes: changes.iter().map(|s| s.to_string()).collect(),
        message: None,
        source_name: "rootfs.tar".into(),
        name: name.map(|n| Reference::parse(n).unwrap()),
    }
}

#[test]
fn a_rootfs_tarball_becomes_a_runnable_image() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let tar = busybox_rootfs();
    let mut o = opts(
        Some("localhost/bb:1"),
        &[
            r#"CMD ["/bin/busybox", "cat", "/etc/motd"]"#,
            "ENV GREETING=hi",
            "WORKDIR /tmp",
            "USER 0:0",
            "EXPOSE 8080",
            "LABEL maker=test",
            "VOLUME /data",
        ],
    );
    o.message = Some("made by a test".into());
    let imported = import(&store, tar.as_slice(), &o).unwrap();
    // The layer is the uncompressed tarball: its digest is its diff ID.
    assert_eq!(imported.layer, Digest::of(&tar));

    let image = store
        .image(
            &Reference::parse("localhost/bb:1").unwrap(),
            &Platform::linux_amd64(),
        )
        .unwrap();
    assert_eq!(image.config_digest, imported.id);
    let c = image.config.config().clone().unwrap();
    assert_eq!(
        c.cmd().clone().unwrap(),
        ["/bin/busybox", "cat", "/etc/motd"]
    );
    assert_eq!(c.env().clone().unwrap(), ["GREETING=hi"]);
    assert_eq!(c.working_dir().as_deref(), Some("/tmp"));
    assert_eq!(c.user().as_deref(), Some("0:0"));
    assert_eq!(c.exposed_ports().clone().unwrap(), ["8080/tcp"]);
    assert_eq!(c.labels().clone().unwrap()["maker"], "test");
    assert_eq!(c.volumes().clone().unwrap(), ["/data"]);
    let h = image.config.history().clone().unwrap();
    assert_eq!(h[0].comment().as_deref(), Some("made by a test"));

    // It unpacks, and busybox runs from it.
    let top = store.unpack(&image).unwrap().unwrap();
    let out = std::process::Command::new("chroot")
        .arg(store.snapshots().fs_dir(&top))
        .args(["/bin/busybox", "cat", "/etc/motd"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello");

    // gzip and zstd give the same layer and the same diff ID.
    for (name, data) in [
        ("localhost/bb:gz", gzip(&tar)),
        ("localhost/bb:zst", zstd(&tar)),
    ] {
        let i = import(&store, data.as_slice(), &opts(Some(name), &[])).unwrap();
        assert_eq!(i.layer, imported.layer, "{name}");
    }
}

#[test]
fn an_unnamed_import_is_kept_untagged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let tar = Layer::new().dir("etc/", 0o755).file("etc/x", "y").tar();
    let i = import(&store, tar.as_slice(), &opts(None, &[])).unwrap();
    let index = store.tags().index().unwrap();
    assert!(index.names.is_empty());
    assert_eq!(index.untagged, vec![i.target.clone()]);
    let (images, broken) = vessel_image::catalog::list(&store).unwrap();
    assert!(broken.is_empty());
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].id, i.id);
    assert!(images[0].names.is_empty());
}

#[test]
fn bad_input_leaves_the_store_exactly_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let good = Layer::new()
        .dir("etc/", 0o755)
        .file("etc/big", &"x".repeat(20_000))
        .file("etc/small", "s")
        .tar();
    import(&store, good.as_slice(), &opts(Some("localhost/ok"), &[])).unwrap();
    let before = store_listing(tmp.path());

    let other = Layer::new().file("a", &"y".repeat(9000)).tar();
    let truncated = &other[..4096];
    let e = import(&store, truncated, &opts(Some("localhost/t"), &[])).unwrap_err();
    assert!(
        matches!(e, ImportError::Truncated { .. }),
        "truncated: {e:?}"
    );
    assert!(e.to_string().contains("truncated"), "{e}");

    let e = import(
        &store,
        &b"this is not a tarball at all, not even close"[..],
        &opts(Some("localhost/c"), &[]),
    )
    .unwrap_err();
    assert!(matches!(e, ImportError::Tar { .. }), "corrupt: {e:?}");

    let mut corrupt = other.clone();
    corrupt[100] ^= 0xff; // inside the first header: checksum mismatch
    let e = import(&store, corrupt.as_slice(), &opts(Some("localhost/c"), &[])).unwrap_err();
    assert!(matches!(e, ImportError::Tar { .. }), "bad header: {e:?}");

    let gz = gzip(&other);
    let e = import(&store, &gz[..gz.len() / 2], &opts(Some("localhost/g"), &[])).unwrap_err();
    assert!(
        matches!(e, ImportError::Tar { .. } | ImportError::Truncated { .. }),
        "truncated gzip: {e:?}"
    );

    let e = import(&store, &b""[..], &opts(Some("localhost/e"), &[])).unwrap_err();
    assert!(matches!(e, ImportError::Empty(_)), "empty: {e:?}");

    let climbing = Layer::new().file("../escape", "x").tar();
    let e = import(&store, climbing.as_slice(), &opts(Some("localhost/d"), &[])).unwrap_err();
    assert!(matches!(e, ImportError::DotDot { .. }), "dotdot: {e:?}");

    let e = import(
        &store,
        other.as_slice(),
        &opts(Some("localhost/bad-change"), &["RUN rm -rf /"]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("RUN"), "{e}");

    assert_eq!(store_listing(tmp.path()), before, "store unchanged");
}
