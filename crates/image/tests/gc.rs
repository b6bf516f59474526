//! Removal, pruning and garbage collection: what users check — names gone,
//! blobs and unpacked layers freed, what containers use kept, nothing lost
//! to a collection running beside loads.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{busybox_layers, config_for, docker_archive, require_root, store_listing, Layer};
use vessel_image::archive::load;
use vessel_image::catalog::{list, CatalogError};
use vessel_image::gc::collect;
use vessel_image::import::{import, ImportOptions};
use vessel_image::manifest::Platform;
use vessel_image::prune::prune;
use vessel_image::remove::{remove, RemoveError, Removed};
use vessel_image::{Digest, ImageStore, Reference};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn none() -> BTreeMap<Digest, Vec<String>> {
    BTreeMap::new()
}

fn import_named(store: &ImageStore, name: Option<&str>, content: &str) -> Digest {
    let tar = Layer::new().file("f", content).tar();
    let o = ImportOptions {
        name: name.map(r),
        source_name: "-".into(),
        ..Default::default()
    };
    import(store, tar.as_slice(), &o).unwrap().id
}

fn load_busybox(store: &ImageStore, name: &str) -> Digest {
    let layers = busybox_layers();
    let config = config_for(&layers);
    let before = store.content().list().unwrap().len();
    load(store, docker_archive(&layers, &config, &[name]).as_slice()).unwrap();
    // Only the image's blobs stay (not the archive's own manifest.json).
    assert_eq!(store.content().list().unwrap().len(), before + 4);
    Digest::of(&config)
}

/// Every blob an image needs is present.
fn complete(store: &ImageStore, name: &str) -> bool {
    let Ok(image) = store.image(&r(name), &Platform::linux_amd64()) else {
        return false;
    };
    image.manifest.layers().iter().all(|l| {
        store
            .content()
            .exists(&vessel_image::manifest::descriptor_digest(l).unwrap())
    })
}

#[test]
fn rmi_untags_then_deletes_and_gc_frees_blobs_and_layers() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let id = load_busybox(&store, "localhost/a:1");
    let target = store.target(&r("localhost/a:1")).unwrap();
    store.tags().set(&r("localhost/a:2"), target).unwrap();
    let other = import_named(&store, Some("localhost/other"), "other");
    let image = store
        .image(&r("localhost/a:1"), &Platform::linux_amd64())
        .unwrap();
    store.unpack(&image).unwrap();
    assert_eq!(store.snapshots().list_committed().unwrap().len(), 2);
    let blobs_before = store.content().list().unwrap().len();

    // One of two names: untag only, nothing is garbage.
    let out = remove(&store, "localhost/a:1", false, &none()).unwrap();
    assert_eq!(out, [Removed::Untagged("localhost/a:1".into())]);
    let c = collect(&store, &BTreeSet::new()).unwrap();
    assert!(c.blobs.is_empty() && c.snapshots.is_empty(), "{c:?}");

    // The last name: the image is deleted, its blobs and layers collected.
    let out = remove(&store, "localhost/a:2", false, &none()).unwrap();
    assert_eq!(
        out,
        [
            Removed::Untagged("localhost/a:2".into()),
            Removed::Deleted(id.clone())
        ]
    );
    let c = collect(&store, &BTreeSet::new()).unwrap();
    assert_eq!(c.blobs.len(), 4, "manifest, config, two layers: {c:?}");
    assert_eq!(c.snapshots.len(), 2);
    assert!(c.snapshot_bytes > 1_000_000, "busybox was unpacked: {c:?}");
    assert!(!store.content().exists(&id));
    assert_eq!(store.content().list().unwrap().len(), blobs_before - 4);
    assert!(store.snapshots().list_committed().unwrap().is_empty());
    // The other image is whole.
    assert!(complete(&store, "localhost/other"));
    assert_eq!(list(&store).unwrap().0[0].id, other);
    // Nothing more to collect.
    assert_eq!(collect(&store, &BTreeSet::new()).unwrap().blobs.len(), 0);
}

#[test]
fn an_image_a_container_uses_is_kept() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let id = load_busybox(&store, "localhost/web");
    let image = store
        .image(&r("localhost/web"), &Platform::linux_amd64())
        .unwrap();
    let top = store.unpack(&image).unwrap().unwrap();
    store.snapshots().prepare("ctr1", Some(&top)).unwrap();
    let users = BTreeMap::from([(id.clone(), vec!["webserver".to_string()])]);
    let before = store_listing(tmp.path());

    let e = remove(&store, "localhost/web", false, &users).unwrap_err();
    assert!(matches!(e, RemoveError::InUse { .. }), "{e:?}");
    assert!(e.to_string().contains("webserver"), "{e}");
    let e = remove(&store, id.short(), false, &users).unwrap_err();
    assert!(e.to_string().contains("webserver"), "{e}");
    assert_eq!(
        store_listing(tmp.path()),
        before,
        "a refused rmi changes nothing"
    );

    // Forced: untagged, but kept for the container (docker's <none> image).
    let out = remove(&store, "localhost/web", true, &users).unwrap();
    assert_eq!(out, [Removed::Untagged("localhost/web:latest".into())]);
    let in_use: BTreeSet<Digest> = users.keys().cloned().collect();
    let c = collect(&store, &in_use).unwrap();
    assert!(c.blobs.is_empty() && c.snapshots.is_empty(), "{c:?}");
    let (images, _) = list(&store).unwrap();
    assert_eq!(images.len(), 1);
    assert!(images[0].names.is_empty());
    // Prune leaves what a container uses.
    let (removed, c) = prune(&store, true, &users).unwrap();
    assert!(
        removed.is_empty() && c.blobs.is_empty(),
        "{removed:?} {c:?}"
    );

    // Even with no entry at all, the container's image is found and kept.
    store
        .tags()
        .update_index(|i| {
            i.untagged.clear();
            Ok(())
        })
        .unwrap();
    let c = collect(&store, &in_use).unwrap();
    assert!(c.blobs.is_empty(), "kept through the manifest scan: {c:?}");
    // ... and its layers stay while the container is built on them.
    let c = collect(&store, &BTreeSet::new()).unwrap();
    assert_eq!(c.blobs.len(), 4);
    assert!(c.snapshots.is_empty(), "the container's layers stay");
    store.snapshots().remove("ctr1").unwrap();
    let c = collect(&store, &BTreeSet::new()).unwrap();
    assert_eq!(c.snapshots.len(), 2);
}

#[test]
fn names_ids_and_their_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let e = remove(&store, "nothing-here", false, &none()).unwrap_err();
    assert_eq!(e.to_string(), "No such image: nothing-here");

    // Imports until two image IDs share their first hex digit.
    let mut ids: Vec<Digest> = Vec::new();
    let prefix = loop {
        let id = import_named(
            &store,
            Some(&format!("localhost/i{}", ids.len())),
            &ids.len().to_string(),
        );
        if let Some(same) = ids.iter().find(|d| d.hex()[..1] == id.hex()[..1]) {
            break same.hex()[..1].to_string();
        }
        ids.push(id);
    };
    let e = remove(&store, &prefix, false, &none()).unwrap_err();
    assert!(
        matches!(e, RemoveError::Lookup(CatalogError::Ambiguous { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("ambiguous"), "{e}");

    // An ID with two names needs force, then removes both.
    let target = store.target(&r("localhost/i0")).unwrap();
    store.tags().set(&r("localhost/twin"), target).unwrap();
    let e = remove(&store, &format!("sha256:{}", ids[0].hex()), false, &none()).unwrap_err();
    assert!(matches!(e, RemoveError::SeveralNames { .. }), "{e:?}");
    let out = remove(&store, &ids[0].hex()[..12], true, &none()).unwrap();
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[2], Removed::Deleted(ids[0].clone()));
    assert!(store.tags().get(&r("localhost/twin")).unwrap().is_none());
}

#[test]
fn leases_keep_blobs_and_dead_ones_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let mut lease = store.lease().unwrap();
    let kept = store
        .content()
        .write_blob_leased(b"in flight", &mut lease)
        .unwrap();
    let loose = store.content().write_blob(b"garbage").unwrap();
    let writer = store.content().writer().unwrap(); // a write in progress
                                                    // Debris of a killed process: a lease and an ingest nobody holds.
    let dead_blob = store.content().write_blob(b"dead lease's").unwrap();
    std::fs::write(
        tmp.path().join("leases/lease-dead"),
        format!("{dead_blob}\n"),
    )
    .unwrap();
    std::fs::write(tmp.path().join("ingest/blob-dead"), b"half").unwrap();

    let c = collect(&store, &BTreeSet::new()).unwrap();
    let mut removed = c.blobs.clone();
    removed.sort();
    let mut want = vec![loose, dead_blob];
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(c.debris, 2);
    assert!(store.content().exists(&kept));
    assert!(writer.temp_path().exists(), "a live ingest stays");
    drop(writer);
    drop(lease);
    let c = collect(&store, &BTreeSet::new()).unwrap();
    assert_eq!(c.blobs, vec![kept]);
}

#[test]
fn collection_beside_imports_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
                collect(&store, &BTreeSet::new()).unwrap();
                runs += 1;
            }
            runs
        })
    };
    for i in 0..40 {
        // The same content each time: its blobs are garbage between rounds,
        // so each import races a collection over blobs already present.
        let name = format!("localhost/race:{}", i % 2);
        import_named(&store, Some(&name), "same content");
        assert!(complete(&store, &name), "round {i}: image incomplete");
        remove(&store, &name, true, &none()).unwrap();
    }
    import_named(&store, Some("localhost/race:last"), "same content");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(collector.join().unwrap() > 0);
    collect(&store, &BTreeSet::new()).unwrap();
    assert!(complete(&store, "localhost/race:last"));
}

#[test]
fn history_and_disk_usage() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    let id = load_busybox(&store, "localhost/bb");
    // An import of the same rootfs shares busybox's first layer.
    let tar = common::busybox_rootfs();
    let o = ImportOptions {
        name: Some(r("localhost/imp")),
        message: Some("hand made".into()),
        source_name: "-".into(),
        ..Default::default()
    };
    let imported = import(&store, tar.as_slice(), &o).unwrap();
    let (images, _) = list(&store).unwrap();
    let bb = images.iter().find(|i| i.id == id).unwrap();
    let imp = images.iter().find(|i| i.id == imported.id).unwrap();

    // No history in the config: one step per layer, newest first.
    let h = vessel_image::history::history(bb);
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].size, tar.len() as u64);
    assert_eq!(h[1].layer, Some(Digest::of(&tar)));
    let h = vessel_image::history::history(imp);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "hand made");
    assert_eq!(h[0].size, tar.len() as u64);

    let image = store
        .image(&r("localhost/bb"), &Platform::linux_amd64())
        .unwrap();
    let top = store.unpack(&image).unwrap().unwrap();
    store.snapshots().prepare("ctr1", Some(&top)).unwrap();
    std::fs::write(store.snapshots().upper_dir("ctr1").join("w"), "12345").unwrap();
    let users = BTreeMap::from([(id.clone(), vec!["c".to_string()])]);
    let du = vessel_image::usage::disk_usage(&store, &users, &["ctr1".to_string()]).unwrap();
    let bb_u = du.images.iter().find(|u| u.image.id == id).unwrap();
    let imp_u = du
        .images
        .iter()
        .find(|u| u.image.id == imported.id)
        .unwrap();
    assert_eq!(bb_u.containers, 1);
    assert_eq!(bb_u.shared, tar.len() as u64, "the shared busybox layer");
    assert_eq!(imp_u.shared, tar.len() as u64);
    assert_eq!(
        du.images_reclaimable,
        store.content().size(&imported.id).unwrap(),
        "only the import's config is not used by the container's image"
    );
    assert_eq!(du.layers.len(), 2);
    assert!(du.layers.iter().all(|l| l.in_use));
    assert!(du.layers.iter().map(|l| l.size).sum::<u64>() > 1_000_000);
    assert_eq!(du.containers[0].size, 5);
}
