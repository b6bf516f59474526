//! Test helpers: a busybox image built from the host's /bin/busybox, loaded
//! into a fresh engine root.
#![allow(dead_code)]

use std::path::Path;

use vessel_engine::{Engine, EngineConfig, Stdio};
use vessel_image::Digest;

/// Tests that run containers fail loudly without root (never skip).
pub fn require_root() {
    vessel_testkit::require_root("this test runs containers and");
}

/// One layer: busybox, a few applet links, /etc/passwd and /etc/group with `www`.
pub fn busybox_layer() -> Vec<u8> {
    vessel_testkit::busybox_rootfs(vessel_testkit::Applets::Only(&[
        "sh", "echo", "id", "pwd", "hostname", "cat", "env", "true", "sleep", "ls",
    ]))
}

/// A `docker save` archive of one image with `layer` and `config` (the
/// image config's `config` object), tagged `tag`.
pub fn docker_archive(layer: &[u8], config: serde_json::Value, tag: &str) -> Vec<u8> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(layer).to_string()]},
    }))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": ["l0/layer.tar"]}]);
    let mut t = vessel_testkit::Tarball::new();
    t.file("l0/layer.tar", 0o644, layer)
        .file(&config_name, 0o644, &config)
        .file(
            "manifest.json",
            0o644,
            &serde_json::to_vec(&manifest).unwrap(),
        );
    t.finish()
}

/// The test image's config.
pub fn image_config() -> serde_json::Value {
    serde_json::json!({
        "Cmd": ["sh", "-c", "echo default"],
        "Env": ["PATH=/bin", "GREETING=from-image"],
        "WorkingDir": "/app",
        "User": "www",
    })
}

/// A fresh engine under `dir` with `localhost/busybox` loaded.
pub fn engine(dir: &Path) -> Engine {
    let engine = Engine::open(EngineConfig {
        root: dir.join("root"),
        run_root: dir.join("run"),
    })
    .unwrap();
    let archive = docker_archive(&busybox_layer(), image_config(), "localhost/busybox:latest");
    vessel_image::archive::load(engine.images(), archive.as_slice()).unwrap();
    engine
}

/// Stdio to a temporary file; returns it and a reader of what was written.
pub fn capture(dir: &Path, name: &str) -> (Stdio, std::path::PathBuf) {
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    (Stdio::to_file(&f).unwrap(), path)
}

pub fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Create and run in the foreground (`--rm` when `rm`); id and exit code.
pub fn run_fg(
    engine: &Engine,
    opts: &vessel_engine::CreateOptions,
    stdio: Stdio,
    rm: bool,
) -> vessel_engine::Result<(String, i32)> {
    let opts = vessel_engine::CreateOptions {
        auto_remove: rm,
        ..opts.clone()
    };
    let attach = vessel_engine::Attach::Attached {
        stdio,
        sig_proxy: false,
    };
    match engine.run(&opts, attach)? {
        (id, vessel_engine::Outcome::Exited(code)) => Ok((id, code)),
        (id, other) => panic!("{id}: attached run returned {other:?}"),
    }
}

/// `start -a`: the exit code.
pub fn start_fg(engine: &Engine, container: &str, stdio: Stdio) -> vessel_engine::Result<i32> {
    let attach = vessel_engine::Attach::Attached {
        stdio,
        sig_proxy: false,
    };
    match engine.start(container, attach)? {
        vessel_engine::Outcome::Exited(code) => Ok(code),
        other => panic!("{container}: attached start returned {other:?}"),
    }
}
