//! The store end to end: load archives, unpack into snapshots, mount them
//! with overlayfs, save and load again. Runs as root (mounts, owners).

mod common;

use std::path::Path;

use common::{busybox_layers, config_for, docker_archive, gzip, require_root, Layer};
use vessel_image::archive::{load, save, LoadError};
use vessel_image::manifest::Platform;
use vessel_image::mount::{mount_all, unmount};
use vessel_image::snapshot::SnapshotError;
use vessel_image::{Digest, ImageStore, Reference};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[test]
fn docker_archive_loads_unpacks_and_mounts() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let layers = busybox_layers();
    let config = config_for(&layers);
    let archive = docker_archive(&layers, &config, &["localhost/busybox:latest"]);
    let loaded = load(&store, archive.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].names, vec![r("localhost/busybox")]);
    assert_eq!(loaded[0].config, Digest::of(&config));

    let image = store
        .image(&r("localhost/busybox"), &Platform::linux_amd64())
        .unwrap();
    assert_eq!(image.manifest.layers().len(), 2);
    let top = store.unpack(&image).unwrap().unwrap();
    let chain = vessel_image::unpack::chain_ids(&[Digest::of(&layers[0]), Digest::of(&layers[1])]);
    assert_eq!(top, chain[1].hex());
    assert_eq!(store.snapshots().chain(&top).unwrap().len(), 2);
    // Unpacking again reuses the snapshots.
    assert_eq!(store.unpack(&image).unwrap().unwrap(), top);

    // A container: overlay of both layers plus its own upper.
    let snaps = store.snapshots();
    let mounts = snaps.prepare("ctr1", Some(&top)).unwrap();
    assert_eq!(mounts[0].fstype, "overlay");
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    mount_all(&mounts, &rootfs).unwrap();
    let check = std::panic::catch_unwind(|| {
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
            "hello"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/added")).unwrap(),
            "new"
        );
        assert!(!rootfs.join("etc/gone").exists(), "whiteout honoured");
        assert!(rootfs.join("bin/busybox").is_file());
        let out = std::process::Command::new("chroot")
            .arg(&rootfs)
            .args([
                "/bin/sh",
                "-c",
                "echo hi > /tmp/w; /bin/busybox cat /etc/motd",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello");
    });
    unmount(&rootfs).unwrap();
    if let Err(panic) = check {
        std::panic::resume_unwind(panic);
    }
    // The write landed in the container's upper, not in a layer.
    assert_eq!(
        std::fs::read_to_string(snaps.upper_dir("ctr1").join("tmp/w")).unwrap(),
        "hi\n"
    );
    for layer in snaps.chain(&top).unwrap() {
        assert!(!snaps.fs_dir(&layer).join("tmp/w").exists());
    }
    // Layers in use cannot be removed; the container can.
    assert!(matches!(
        snaps.remove(&top),
        Err(SnapshotError::InUse { .. })
    ));
    snaps.remove("ctr1").unwrap();
    assert!(!snaps.active_exists("ctr1"));
    // A read-only view.
    let mounts = snaps.view("v", Some(&top)).unwrap();
    mount_all(&mounts, &rootfs).unwrap();
    let w = std::fs::write(rootfs.join("x"), "x");
    assert!(rootfs.join("etc/added").exists());
    unmount(&rootfs).unwrap();
    assert!(w.is_err(), "a view is read-only");
    assert!(matches!(
        snaps.commit("n", "v"),
        Err(SnapshotError::NotActive(_))
    ));
    snaps.remove("v").unwrap();
    // Commit a container's changes as a new snapshot.
    snaps.prepare("c2", Some(&top)).unwrap();
    std::fs::write(snaps.upper_dir("c2").join("new"), "n").unwrap();
    snaps.commit("mine", "c2").unwrap();
    assert_eq!(snaps.chain("mine").unwrap().len(), 3);
    snaps.remove("mine").unwrap();
    snaps.remove(&top).unwrap();
    assert!(matches!(
        snaps.prepare("../x", None),
        Err(SnapshotError::InvalidName(_))
    ));
}

#[test]
fn save_then_load_round_trips() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let a = ImageStore::open(tmp.path().join("a")).unwrap();
    let layers = busybox_layers();
    let archive = docker_archive(
        &layers,
        &config_for(&layers),
        &["busybox:1", "localhost/bb:2"],
    );
    load(&a, gzip(&archive).as_slice()).unwrap();
    let mut out = Vec::new();
    save(&a, &[r("busybox:1"), r("localhost/bb:2")], &mut out).unwrap();

    let b = ImageStore::open(tmp.path().join("b")).unwrap();
    let loaded = load(&b, out.as_slice()).unwrap();
    let names: Vec<String> = loaded
        .iter()
        .flat_map(|l| l.names.iter().map(|n| n.to_string()))
        .collect();
    assert_eq!(names, ["docker.io/library/busybox:1", "localhost/bb:2"]);
    assert_eq!(
        a.target(&r("busybox:1")).unwrap(),
        b.target(&r("busybox:1")).unwrap(),
        "same manifest digest after a round trip"
    );
    let image = b
        .image(&r("localhost/bb:2"), &Platform::linux_amd64())
        .unwrap();
    let top = b.unpack(&image).unwrap().unwrap();
    assert!(b.snapshots().fs_dir(&top).join("etc/added").exists());
    // The saved archive also carries docker's manifest.json.
    let mut ar = tar::Archive::new(out.as_slice());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"manifest.json".to_string()));
    assert!(names.contains(&"oci-layout".to_string()));
}

fn tags_json(store: &ImageStore) -> Option<Vec<u8>> {
    std::fs::read(store.root().join("index.json")).ok()
}

#[test]
fn bad_archives_change_no_tags() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let layers = busybox_layers();
    load(
        &store,
        docker_archive(&layers, &config_for(&layers), &["localhost/ok"]).as_slice(),
    )
    .unwrap();
    let before = tags_json(&store);
    let listing = common::store_listing(tmp.path());

    // A config whose diff IDs do not match the layers.
    let other = vec![Layer::new().file("x", "y").tar(), layers[1].clone()];
    let bad = docker_archive(&layers, &config_for(&other), &["localhost/bad"]);
    let e = load(&store, bad.as_slice()).unwrap_err();
    assert!(matches!(e, LoadError::DiffId { .. }), "{e:?}");
    // Truncated.
    let good = docker_archive(&layers, &config_for(&layers), &["localhost/trunc"]);
    let e = load(&store, &good[..good.len() / 2]).unwrap_err();
    assert!(matches!(e, LoadError::Truncated { .. }), "{e:?}");
    // An OCI blob whose content does not match its name.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(4);
    h.set_mode(0o644);
    let fake = format!("blobs/sha256/{}", Digest::of(b"real").hex());
    b.append_data(&mut h, &fake, &b"fake"[..]).unwrap();
    let e = load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(matches!(e, LoadError::Blob { .. }), "{e:?}");
    assert!(!store.content().exists(&Digest::of(b"fake")));
    // Not an archive at all.
    let e = load(&store, &b"definitely not a tar archive"[..]).unwrap_err();
    assert!(
        matches!(e, LoadError::Read(_) | LoadError::NotAnArchive),
        "{e:?}"
    );

    assert_eq!(tags_json(&store), before, "tags unchanged by failed loads");
    assert_eq!(
        common::store_listing(tmp.path()),
        listing,
        "no blob, ingest or lease left by failed loads"
    );
    assert!(
        store.content().ingests().unwrap().is_empty(),
        "no ingest left behind"
    );
    assert!(
        store.gc_roots().unwrap().leased.is_empty(),
        "leases released"
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_not_committed() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let layers = busybox_layers();
    load(
        &store,
        docker_archive(&layers, &config_for(&layers), &["localhost/x"]).as_slice(),
    )
    .unwrap();
    let image = store
        .image(&r("localhost/x"), &Platform::linux_amd64())
        .unwrap();
    // Corrupt the second layer blob on disk behind the store's back.
    let blob = vessel_image::manifest::descriptor_digest(&image.manifest.layers()[1]).unwrap();
    std::fs::write(
        store.content().blob_path(&blob),
        Layer::new().file("evil", "e").tar(),
    )
    .unwrap();
    let e = store.unpack(&image).unwrap_err();
    assert!(format!("{e}").contains("Cannot apply layer"), "{e:?}");
    // The first layer is committed, the bad one is not, and no debris is left.
    let committed = store.snapshots().list_committed().unwrap();
    assert_eq!(committed.len(), 1);
    let active: Vec<_> = std::fs::read_dir(tmp.path().join("snapshots/active"))
        .unwrap()
        .collect();
    assert!(active.is_empty(), "no half-unpacked snapshot left");
    let _ = Path::new("");
}
