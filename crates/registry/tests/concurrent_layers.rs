//! Layers are downloaded concurrently: a pull of a two-layer image through
//! a proxy that counts blob GETs in flight at once (common::blob_proxy)
//! has both layer downloads open at the same time, with the default options
//! (the ones `vessel pull` uses).

mod common;

use common::blob_proxy::BlobProxy;
use common::image::{self, TestImage};
use common::{Auth, Registry};
use vessel_image::manifest::Platform;
use vessel_image::{ImageStore, Reference};
use vessel_registry::{pull, Options};

#[test]
fn layers_of_an_image_are_downloaded_concurrently() {
    let reg = Registry::start(Auth::None);
    let img = TestImage::busybox("amd64");
    assert!(img.layers.len() >= 2, "the test image needs several layers");
    image::skopeo_push(&img, &format!("{}/lib/layers:1", reg.host()), None);

    let proxy = BlobProxy::start(reg.port);
    let name = format!("{}/lib/layers:1", proxy.host());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let reference = Reference::parse(&name).unwrap();
    let digest = pull(&store, &reference, &Options::default()).unwrap();
    assert_eq!(digest, img.manifest.digest);
    assert!(store.image(&reference, &Platform::linux_amd64()).is_ok());

    let counts = proxy.counts();
    for layer in &img.layers {
        let hits = counts
            .blob_gets
            .iter()
            .filter(|p| p.ends_with(&layer.digest.to_string()))
            .count();
        assert_eq!(hits, 1, "GETs of {}: {:?}", layer.digest, counts.blob_gets);
    }
    assert!(
        counts.max_in_flight > 1,
        "blob downloads never overlapped: {counts:?}"
    );
}
