//! Pull and push against a real `docker-registry` on 127.0.0.1 (no auth),
//! with skopeo as the independent client. Runs as root (unpack mounts).

mod common;

use std::sync::Arc;

use common::image::{self, TestImage};
use common::{skopeo_digest, Auth, Recorder, Registry};
use vessel_image::manifest::{Platform, DOCKER_MANIFEST};
use vessel_image::{ImageStore, Reference};
use vessel_registry::{pull, push, Options, Outcome, RegistryError};

fn options(progress: Arc<Recorder>) -> Options {
    Options {
        progress,
        ..Options::default()
    }
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[test]
fn skopeo_push_then_vessel_pull_unpacks_busybox() {
    let reg = Registry::start(Auth::None);
    let img = TestImage::busybox("amd64");
    let name = format!("{}/tools/busybox:1.0", reg.host());
    image::skopeo_push(&img, &name, None);

    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let rec = Recorder::new();
    let digest = pull(&store, &r(&name), &options(rec.clone())).unwrap();
    assert_eq!(digest, img.manifest.digest);
    assert_eq!(digest, skopeo_digest(&name, None));
    assert_eq!(rec.outcomes(), vec![Outcome::Done, Outcome::Done]);

    let image = store.image(&r(&name), &Platform::linux_amd64()).unwrap();
    assert_eq!(image.config_digest, img.config.digest);
    let top = store.unpack(&image).unwrap().unwrap();
    let fs = store.snapshots().fs_dir(&top);
    let diff_ids = vessel_image::manifest::diff_ids(&image.config).unwrap();
    let first = vessel_image::unpack::chain_ids(&diff_ids)[0].clone();
    let lower = store.snapshots().fs_dir(first.hex());
    assert!(
        lower.join("bin/busybox").is_file(),
        "no /bin/busybox in {lower:?}"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/arch")).unwrap(),
        "amd64\n"
    );

    // Again: every blob is already there, nothing is downloaded.
    let rec = Recorder::new();
    assert_eq!(
        pull(&store, &r(&name), &options(rec.clone())).unwrap(),
        digest
    );
    assert_eq!(rec.outcomes(), vec![Outcome::Exists, Outcome::Exists]);

    // By digest, without a tag, into another store.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = ImageStore::open(dir2.path()).unwrap();
    let by_digest = r(&format!("{}/tools/busybox@{digest}", reg.host()));
    assert_eq!(
        pull(&store2, &by_digest, &Options::default()).unwrap(),
        digest
    );
    assert!(store2.image(&by_digest, &Platform::linux_amd64()).is_ok());
    assert!(common::ingests(dir2.path()).is_empty());
}

#[test]
fn vessel_push_then_pull_round_trip_with_chunks_and_mounts() {
    let reg = Registry::start(Auth::None);
    let img = TestImage::busybox("amd64");
    let src_dir = tempfile::tempdir().unwrap();
    let src = ImageStore::open(src_dir.path()).unwrap();
    img.put_in_store(&src, "local/busybox:v1");

    // Small chunks: the busybox layer (~1 MB) goes up in PATCH chunks.
    let rec = Recorder::new();
    let opts = Options {
        chunk_size: 256 << 10,
        ..options(rec.clone())
    };
    let dest = format!("{}/team/busybox:v1", reg.host());
    let pushed = push(&src, &r("local/busybox:v1"), &r(&dest), &opts).unwrap();
    assert_eq!(pushed, img.manifest.digest);
    assert_eq!(skopeo_digest(&dest, None), pushed);
    assert_eq!(rec.outcomes(), vec![Outcome::Done; 3]);

    // Pushing again sends nothing.
    let rec = Recorder::new();
    push(
        &src,
        &r("local/busybox:v1"),
        &r(&dest),
        &options(rec.clone()),
    )
    .unwrap();
    assert_eq!(rec.outcomes(), vec![Outcome::Exists; 3]);

    // Another repository on the same registry: blobs are mounted.
    let rec = Recorder::new();
    let other = format!("{}/other/busybox:v1", reg.host());
    assert_eq!(
        push(
            &src,
            &r("local/busybox:v1"),
            &r(&other),
            &options(rec.clone())
        )
        .unwrap(),
        pushed
    );
    assert_eq!(
        rec.outcomes(),
        vec![Outcome::Mounted("team/busybox".into()); 3]
    );

    // skopeo pulls what vessel pushed (every blob verified on the way into
    // an OCI layout): the manifest it names is the one vessel reported.
    let layout = tempfile::tempdir().unwrap();
    common::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("oci:{}:got", layout.path().display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], pushed.to_string());
    for b in img.blobs() {
        let path = layout.path().join("blobs/sha256").join(b.digest.hex());
        assert_eq!(std::fs::read(path).unwrap(), b.data);
    }

    // Pulled back by vessel into an empty store: same digest, same bytes.
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(
        pull(&store, &r(&other), &Options::default()).unwrap(),
        pushed
    );
    for b in img.blobs() {
        let got = store.content().read_blob(&b.digest, 64 << 20).unwrap();
        assert_eq!(got, b.data);
    }
}

#[test]
fn docker_v2_schema_2_images_pull_and_push_unchanged() {
    let reg = Registry::start(Auth::None);
    let img = TestImage::busybox("amd64");
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "latest");
    let name = format!("{}/docker/busybox:1", reg.host());
    // skopeo converts the OCI image to Docker's media types.
    common::skopeo(&[
        "copy",
        "--format=v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.path().display()),
        &format!("docker://{name}"),
    ]);
    let digest = skopeo_digest(&name, None);
    assert_ne!(digest, img.manifest.digest, "skopeo did not convert");

    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(
        pull(&store, &r(&name), &Options::default()).unwrap(),
        digest
    );
    let image = store.image(&r(&name), &Platform::linux_amd64()).unwrap();
    assert_eq!(image.target.media_type, DOCKER_MANIFEST);
    let raw = store.content().read_blob(&digest, 1 << 20).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw["mediaType"], DOCKER_MANIFEST);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // The layers are the same bytes (only the manifest's media types changed).
    assert_eq!(image.config_digest, img.config.digest);
    let top = store.unpack(&image).unwrap().unwrap();
    let fs = store.snapshots().fs_dir(&top);
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/arch")).unwrap(),
        "amd64\n"
    );

    // Pushed by vessel elsewhere, it stays a Docker manifest with the same digest.
    let other = format!("{}/again/busybox:1", reg.host());
    assert_eq!(
        push(&store, &r(&name), &r(&other), &Options::default()).unwrap(),
        digest
    );
    assert_eq!(skopeo_digest(&other, None), digest);
}

#[test]
fn multi_arch_index_resolves_to_the_platform() {
    let reg = Registry::start(Auth::None);
    let amd = TestImage::busybox("amd64");
    let arm = TestImage::busybox("arm64");
    let index = image::index(&[&arm, &amd]);
    let layout = tempfile::tempdir().unwrap();
    let mut blobs = amd.blobs();
    blobs.extend(arm.blobs());
    blobs.push(&index);
    image::write_layout(layout.path(), &blobs, &index, image::OCI_INDEX, "latest");
    let name = format!("{}/multi:latest", reg.host());
    common::skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.path().display()),
        &format!("docker://{name}"),
    ]);
    assert_eq!(skopeo_digest(&name, None), index.digest);

    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(
        pull(&store, &r(&name), &Options::default()).unwrap(),
        index.digest
    );
    let image = store.image(&r(&name), &Platform::linux_amd64()).unwrap();
    assert_eq!(image.manifest_digest, amd.manifest.digest);
    // Only the amd64 image's own layer came.
    assert!(store.content().exists(&amd.layers[1].digest));
    assert!(!store.content().exists(&arm.layers[1].digest));

    // Another platform by option.
    let arm64 = Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    };
    let opts = Options {
        platform: arm64.clone(),
        ..Options::default()
    };
    pull(&store, &r(&name), &opts).unwrap();
    assert_eq!(
        store.image(&r(&name), &arm64).unwrap().manifest_digest,
        arm.manifest.digest
    );

    // An unknown platform: a clear error, and the store is unchanged.
    let dir = tempfile::tempdir().unwrap();
    let empty = ImageStore::open(dir.path()).unwrap();
    let s390x = Options {
        platform: Platform {
            os: "linux".into(),
            architecture: "s390x".into(),
            variant: None,
        },
        ..Options::default()
    };
    let e = pull(&empty, &r(&name), &s390x).unwrap_err();
    assert!(matches!(e, RegistryError::Platform { .. }), "{e:?}");
    let chain = format!("{:#}", anyhow::Error::from(e));
    assert!(chain.contains("linux/s390x"), "{chain}");
    assert!(empty.tags().list().unwrap().is_empty());
    assert!(empty.content().list().unwrap().is_empty());
}

#[test]
fn missing_tag_and_repository_are_clear_404s() {
    let reg = Registry::start(Auth::None);
    image::skopeo_push(
        &TestImage::busybox("amd64"),
        &format!("{}/bb:1", reg.host()),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    for missing in [
        format!("{}/bb:nope", reg.host()),
        format!("{}/absent:1", reg.host()),
    ] {
        let e = pull(&store, &r(&missing), &Options::default()).unwrap_err();
        assert_eq!(e.http_status(), Some(404), "{e:?}");
        let msg = format!("{:#}", anyhow::Error::from(e));
        assert!(msg.contains(&reg.host()), "{msg}");
        assert!(msg.contains("404"), "{msg}");
        assert!(
            msg.contains("MANIFEST_UNKNOWN") || msg.contains("NAME_UNKNOWN"),
            "{msg}"
        );
    }
    assert!(store.tags().list().unwrap().is_empty());
}

#[test]
fn corrupted_blob_in_the_registry_is_refused() {
    let reg = Registry::start(Auth::None);
    let img = TestImage::busybox("amd64");
    let name = format!("{}/bb:1", reg.host());
    image::skopeo_push(&img, &name, None);
    // Same length, other bytes: only the digest can tell.
    let victim = &img.layers[0];
    let mut data = victim.data.clone();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(reg.blob_data(victim.digest.hex()), &data).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let e = pull(&store, &r(&name), &Options::default()).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Blob { digest, .. } if digest == &victim.digest),
        "{e:?}"
    );
    let msg = format!("{:#}", anyhow::Error::from(e));
    assert!(msg.contains("digest mismatch"), "{msg}");
    assert!(!store.content().exists(&victim.digest));
    assert!(!store.content().exists(&img.manifest.digest));
    assert!(store.tags().list().unwrap().is_empty());
    assert!(common::ingests(dir.path()).is_empty());
}
