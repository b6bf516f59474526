//! Transfers that go wrong midway, against a small fake registry that can
//! drop or stall a blob: nothing half-written ever becomes visible, and the
//! next pull starts clean. Also: blob redirects carry no credentials.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::image::{TestImage, OCI_MANIFEST};
use common::server::{respond, write_head, Req, Server};
use vessel_image::{ImageStore, Reference};
use vessel_registry::{pull, Credentials, Options, RegistryError, RetryPolicy};

const FULL: u8 = 0;
const DROP: u8 = 1;
const STALL: u8 = 2;
/// The first request drops halfway; a `Range` request gets the rest (206).
const RESUME: u8 = 3;

/// A registry serving `img` as `img:latest`; the busybox layer is cut
/// halfway (closed or stalled) per `mode`. Blob requests are redirected to
/// `/storage/` when `redirect` is set; `/storage/` records Authorization
/// headers it sees into `leaked` (and, in RESUME mode, the blob's `Range`
/// headers go there too).
fn fake_registry(
    img: TestImage,
    mode: Arc<AtomicU8>,
    redirect: bool,
    leaked: Arc<Mutex<Vec<String>>>,
) -> Server {
    let ranges = leaked.clone();
    let big = img.layers[0].digest.clone();
    Server::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let path = req.path.as_str();
        // With redirects on, the API wants Basic auth (so the client has
        // credentials it could leak to the storage host).
        if redirect && path.starts_with("/v2/") && req.header("authorization").is_none() {
            let h = [("WWW-Authenticate", r#"Basic realm="fake""#.to_string())];
            return respond(s, 401, &h, b"");
        }
        if path == "/v2/" {
            return respond(s, 200, &[], b"{}");
        }
        if path.starts_with("/v2/img/manifests/") {
            let h = vec![
                ("Content-Type", OCI_MANIFEST.to_string()),
                ("Docker-Content-Digest", img.manifest.digest.to_string()),
            ];
            return respond(s, 200, &h, &img.manifest.data);
        }
        let hex = if let Some(d) = path.strip_prefix("/v2/img/blobs/sha256:") {
            if redirect {
                let loc = format!("/storage/{d}");
                return respond(s, 307, &[("Location", loc)], b"");
            }
            d
        } else if let Some(d) = path.strip_prefix("/storage/") {
            if let Some(a) = req.header("authorization") {
                leaked.lock().unwrap().push(a.to_string());
            }
            d
        } else {
            return respond(s, 404, &[], b"");
        };
        let Some(blob) = img.blobs().into_iter().find(|b| b.digest.hex() == hex) else {
            return respond(s, 404, &[], b"");
        };
        let m = mode.load(Ordering::SeqCst);
        if blob.digest != big || m == FULL {
            return respond(s, 200, &[], &blob.data);
        }
        if m == RESUME {
            if let Some(range) = req.header("range") {
                ranges.lock().unwrap().push(range.to_string());
                let from: usize = range
                    .strip_prefix("bytes=")
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|r| r.parse().ok())
                    .unwrap();
                let total = blob.data.len();
                let h = [(
                    "Content-Range",
                    format!("bytes {from}-{}/{total}", total - 1),
                )];
                return respond(s, 206, &h, &blob.data[from..]);
            }
        }
        let _ = write_head(s, 200, &[], blob.size());
        let _ = s.write_all(&blob.data[..blob.data.len() / 2]);
        let _ = s.flush();
        if m == STALL {
            // Hold the connection open until the client is killed.
            std::thread::sleep(Duration::from_secs(600));
        }
        // DROP: returning closes the connection mid-body.
    }))
}

fn reference(server: &Server) -> Reference {
    Reference::parse(&format!("127.0.0.1:{}/img:latest", server.port)).unwrap()
}

#[test]
fn dropped_connection_mid_blob_leaves_nothing() {
    let img = TestImage::busybox("amd64");
    let mode = Arc::new(AtomicU8::new(DROP));
    let server = fake_registry(img.clone(), mode.clone(), false, Default::default());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    // The server drops every attempt (it ignores Range): the retries run
    // out and the pull fails.
    let e = pull(&store, &reference(&server), &fast_retries()).unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Transfer { .. } | RegistryError::Blob { .. }
        ),
        "{e:?}"
    );
    assert!(!store.content().exists(&img.layers[0].digest));
    assert!(!store.content().exists(&img.manifest.digest));
    assert!(store.tags().list().unwrap().is_empty());
    assert!(common::ingests(dir.path()).is_empty());

    // The next pull starts over and succeeds.
    mode.store(FULL, Ordering::SeqCst);
    let d = pull(&store, &reference(&server), &Options::default()).unwrap();
    assert_eq!(d, img.manifest.digest);
    assert!(store.content().exists(&img.layers[0].digest));
}

fn fast_retries() -> Options {
    Options {
        retry: RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(10),
        },
        ..Options::default()
    }
}

#[test]
fn dropped_connection_resumes_with_a_range_request() {
    let img = TestImage::busybox("amd64");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = fake_registry(
        img.clone(),
        Arc::new(AtomicU8::new(RESUME)),
        false,
        seen.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let d = pull(&store, &reference(&server), &fast_retries()).unwrap();
    assert_eq!(d, img.manifest.digest);
    let half = img.layers[0].data.len() / 2;
    assert_eq!(*seen.lock().unwrap(), vec![format!("bytes={half}-")]);
    let data = store
        .content()
        .read_blob(&img.layers[0].digest, 64 << 20)
        .unwrap();
    assert_eq!(data, img.layers[0].data);
    assert!(common::ingests(dir.path()).is_empty());
}

/// Runs only as the child process of `killed_pull_*`: pulls and hangs.
#[test]
fn child_pull() {
    let Ok(spec) = std::env::var("VESSEL_TEST_CHILD_PULL") else {
        return;
    };
    let (root, name) = spec.split_once('|').unwrap();
    let store = ImageStore::open(root).unwrap();
    let _ = pull(
        &store,
        &Reference::parse(name).unwrap(),
        &Options::default(),
    );
}

#[test]
fn killed_pull_leaves_no_visible_half_blob() {
    let img = TestImage::busybox("amd64");
    let mode = Arc::new(AtomicU8::new(STALL));
    let server = fake_registry(img.clone(), mode.clone(), false, Default::default());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_pull", "--nocapture", "--test-threads=1"])
        .env(
            "VESSEL_TEST_CHILD_PULL",
            format!("{}|{}", dir.path().display(), reference(&server)),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the child has written part of the layer, then kill it.
    let half = img.layers[0].size() / 2;
    let mut seen = false;
    for _ in 0..2000 {
        seen = common::ingests(dir.path()).iter().any(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() >= half)
                .unwrap_or(false)
        });
        if seen {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen, "the child never wrote half the layer");

    // The half-written layer is debris in ingest/, never a blob.
    assert!(!store.content().exists(&img.layers[0].digest));
    assert!(!store.content().exists(&img.manifest.digest));
    assert!(store.tags().list().unwrap().is_empty());
    assert!(store
        .content()
        .list()
        .unwrap()
        .iter()
        .all(|d| img.layers.iter().any(|l| &l.digest == d)));

    mode.store(FULL, Ordering::SeqCst);
    let d = pull(&store, &reference(&server), &Options::default()).unwrap();
    assert_eq!(d, img.manifest.digest);
    let data = store
        .content()
        .read_blob(&img.layers[0].digest, 64 << 20)
        .unwrap();
    assert_eq!(data, img.layers[0].data);
}

#[test]
fn redirected_blobs_get_no_credentials() {
    let img = TestImage::busybox("amd64");
    let leaked = Arc::new(Mutex::new(Vec::new()));
    let server = fake_registry(
        img.clone(),
        Arc::new(AtomicU8::new(FULL)),
        true,
        leaked.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let opts = Options {
        credentials: Some(Credentials {
            username: "u".into(),
            password: "p".into(),
        }),
        ..Options::default()
    };
    assert_eq!(
        pull(&store, &reference(&server), &opts).unwrap(),
        img.manifest.digest
    );
    assert!(
        leaked.lock().unwrap().is_empty(),
        "{:?}",
        leaked.lock().unwrap()
    );
    // Without credentials the same registry refuses.
    let other = ImageStore::open(tempfile::tempdir().unwrap().path()).unwrap();
    let e = pull(&other, &reference(&server), &Options::default()).unwrap_err();
    assert_eq!(e.http_status(), Some(401), "{e:?}");
}
