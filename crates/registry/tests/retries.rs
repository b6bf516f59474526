//! A registry that is briefly unwell (503, 429 with Retry-After) is asked
//! again and the pull succeeds; one that stays unwell gets a bounded number
//! of attempts and a clear error naming the status.

mod common;

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::image::{TestImage, OCI_MANIFEST};
use common::server::{respond, Req, Server};
use vessel_image::{ImageStore, Reference};
use vessel_registry::{pull, Options, RegistryError, RetryPolicy};

/// Per path, how many requests it has seen.
type Counts = Arc<Mutex<HashMap<String, u32>>>;

/// Serves `img` as `img:latest`. The manifest fails `manifest_failures`
/// times with 503, and every blob's first request gets 429 with
/// `Retry-After: 0`.
fn flaky_registry(img: TestImage, manifest_failures: u32, counts: Counts) -> Server {
    Server::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let path = req.path.clone();
        let n = {
            let mut c = counts.lock().unwrap();
            let n = c.entry(path.clone()).or_default();
            *n += 1;
            *n
        };
        if path == "/v2/" {
            return respond(s, 200, &[], b"{}");
        }
        if path.starts_with("/v2/img/manifests/") {
            if n <= manifest_failures {
                let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#;
                return respond(s, 503, &[], body);
            }
            let h = vec![("Content-Type", OCI_MANIFEST.to_string())];
            return respond(s, 200, &h, &img.manifest.data);
        }
        if let Some(hex) = path.strip_prefix("/v2/img/blobs/sha256:") {
            if n == 1 {
                return respond(s, 429, &[("Retry-After", "0".to_string())], b"");
            }
            if let Some(b) = img.blobs().into_iter().find(|b| b.digest.hex() == hex) {
                return respond(s, 200, &[], &b.data);
            }
        }
        respond(s, 404, &[], b"");
    }))
}

fn options() -> Options {
    Options {
        retry: RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(10),
        },
        ..Options::default()
    }
}

fn manifest_requests(counts: &Counts) -> u32 {
    counts
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/v2/img/manifests/"))
        .map(|(_, n)| *n)
        .sum()
}

#[test]
fn passing_503_and_429_are_retried() {
    let img = TestImage::busybox("amd64");
    let counts = Counts::default();
    let server = flaky_registry(img.clone(), 2, counts.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("127.0.0.1:{}/img:latest", server.port)).unwrap();
    assert_eq!(pull(&store, &r, &options()).unwrap(), img.manifest.digest);
    assert_eq!(manifest_requests(&counts), 3);
    for b in img.blobs() {
        let path = format!("/v2/img/blobs/{}", b.digest);
        if path.contains(&img.manifest.digest.hex().to_string()) {
            continue;
        }
        assert_eq!(counts.lock().unwrap().get(&path), Some(&2), "{path}");
        assert!(store.content().exists(&b.digest));
    }
}

#[test]
fn a_registry_that_stays_down_gets_a_bounded_number_of_attempts() {
    let img = TestImage::busybox("amd64");
    let counts = Counts::default();
    let server = flaky_registry(img, u32::MAX, counts.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("127.0.0.1:{}/img:latest", server.port)).unwrap();
    let e = pull(&store, &r, &options()).unwrap_err();
    assert!(
        matches!(e, RegistryError::Server { status: 503, .. }),
        "{e:?}"
    );
    let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(text.contains("503") && text.contains("try later"), "{text}");
    // The first attempt and three retries.
    assert_eq!(manifest_requests(&counts), 4);
    assert!(store.tags().list().unwrap().is_empty());

    // Retries off: one attempt.
    counts.lock().unwrap().clear();
    let once = Options {
        retry: RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        },
        ..Options::default()
    };
    pull(&store, &r, &once).unwrap_err();
    assert_eq!(manifest_requests(&counts), 1);
}
