//! Test helpers: an engine over a temporary root with `localhost/busybox`
//! imported from a rootfs tarball made of the host's /bin/busybox.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vessel_build::{BuildError, BuildOptions, Built, Output};
use vessel_engine::{Attach, CreateOptions, Engine, EngineConfig, NetworkMode, Outcome, Stdio};
use vessel_image::Reference;

pub use vessel_testkit::error_chain as chain;

/// These tests run containers: they fail without root, never skip.
pub fn require_root() {
    vessel_testkit::require_root("vessel-build's integration tests (they run containers)");
}

/// A busybox root filesystem tarball: every applet, /etc/passwd with `www`.
pub fn busybox_rootfs() -> Vec<u8> {
    vessel_testkit::busybox_rootfs(vessel_testkit::Applets::All)
}

/// A fresh engine under `dir` with `localhost/busybox` imported.
pub fn engine(dir: &Path) -> Engine {
    let engine = Engine::open(EngineConfig {
        root: dir.join("root"),
        run_root: dir.join("run"),
    })
    .unwrap();
    let opts = vessel_image::import::ImportOptions {
        changes: vec!["ENV PATH=/bin".into(), "CMD [\"sh\"]".into()],
        source_name: "busybox".into(),
        name: Some(Reference::parse("localhost/busybox").unwrap()),
        ..Default::default()
    };
    vessel_image::import::import(engine.images(), busybox_rootfs().as_slice(), &opts).unwrap();
    engine
}

/// A context directory with these files.
pub fn context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let ctx = dir.join("ctx");
    for (name, content) in files {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    ctx
}

pub fn options(ctx: &Path, tag: &str) -> BuildOptions {
    BuildOptions {
        context: ctx.to_path_buf(),
        containerfile: None,
        tags: vec![Reference::parse(tag).unwrap()],
        build_args: Default::default(),
        target: None,
        no_cache: false,
        network: NetworkMode::None,
        registry: Default::default(),
    }
}

/// Build; RUN output goes to `<dir>/run-output`.
pub fn build(engine: &Engine, opts: &BuildOptions, dir: &Path) -> Result<Built, BuildError> {
    let run = std::fs::File::create(dir.join("run-output")).unwrap();
    let mut out = Output {
        log: Box::new(std::io::sink()),
        run: Some(run),
    };
    vessel_build::build(engine, opts, &mut out)
}

/// Run `image`'s default command; its output and exit code.
pub fn run_image(engine: &Engine, image: &str, dir: &Path) -> (String, i32) {
    let path = dir.join("container-output");
    let f = std::fs::File::create(&path).unwrap();
    let opts = CreateOptions {
        image: image.into(),
        auto_remove: true,
        ..Default::default()
    };
    let attach = Attach::Attached {
        stdio: Stdio::to_file(&f).unwrap(),
        sig_proxy: false,
    };
    let code = match engine.run(&opts, attach).unwrap() {
        (_, Outcome::Exited(c)) => c,
        (_, o) => panic!("attached run returned {o:?}"),
    };
    (std::fs::read_to_string(path).unwrap(), code)
}
