//! Test harness: a real `docker-registry` (distribution) on 127.0.0.1 with a
//! free port and its storage in a temporary directory, optionally with
//! htpasswd Basic auth or token auth (`vessel_testkit::registry`); skopeo as
//! the independent client; a busybox image built in the test. Missing tools
//! are failures, not skips: run scripts/install-deps.sh.

#![allow(dead_code)] // each test file uses a part

pub mod blob_proxy;
pub mod image;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use vessel_image::Digest;
use vessel_registry::{Direction, Outcome, Progress};
#[allow(unused_imports)] // each test file uses a part
pub use vessel_testkit::registry::{free_port, tool, Auth, Registry};

/// Run skopeo with `args`, failing the test with its output.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new(tool("skopeo"))
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest digest skopeo sees for `reference` (an independent client).
pub fn skopeo_digest(reference: &str, creds: Option<&str>) -> Digest {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    let c;
    if let Some(creds) = creds {
        c = format!("--creds={creds}");
        args.push(&c);
    }
    let r = format!("docker://{reference}");
    args.push(&r);
    let raw = Command::new(tool("skopeo")).args(&args).output().unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    Digest::of(&raw.stdout)
}

/// Progress that records what happened to each blob.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(Digest, Outcome)>>,
    pub begun: Mutex<Vec<(Digest, u64, Direction)>>,
}

impl Progress for Recorder {
    fn begin(&self, digest: &Digest, size: u64, direction: Direction) {
        self.begun
            .lock()
            .unwrap()
            .push((digest.clone(), size, direction));
    }
    fn end(&self, digest: &Digest, outcome: Outcome) {
        self.events.lock().unwrap().push((digest.clone(), outcome));
    }
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| o.clone())
            .collect()
    }
}

/// Files under the store's ingest directory (debris or writes in progress).
pub fn ingests(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("ingest"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
