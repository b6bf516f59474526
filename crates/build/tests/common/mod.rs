//! Test helpers: an engine over a temporary root with `localhost/busybox`
//! imported from a rootfs tarball made of the host's /bin/busybox.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vessel_build::{BuildError, BuildOptions, Built, Output};
use vessel_engine::{Attach, CreateOptions, Engine, EngineConfig, NetworkMode, Outcome, Stdio};
use vessel_image::Reference;

/// These tests run containers: they fail without root, never skip.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "vessel-build's integration tests run containers and need root"
    );
}

fn add(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(data.len() as u64);
    match link {
        Some(l) => b.append_link(&mut h, path, l).unwrap(),
        None => b.append_data(&mut h, path, data).unwrap(),
    }
}

/// A busybox root filesystem tarball: every applet, /etc/passwd with `www`.
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    use tar::EntryType::{Directory, Regular, Symlink};
    for d in ["bin", "etc", "tmp", "var", "var/www"] {
        add(
            &mut b,
            Directory,
            d,
            if d == "tmp" { 0o1777 } else { 0o755 },
            b"",
            None,
        );
    }
    add(&mut b, Regular, "bin/busybox", 0o755, &busybox, None);
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            add(
                &mut b,
                Symlink,
                &format!("bin/{applet}"),
                0o777,
                b"",
                Some("busybox"),
            );
        }
    }
    let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n";
    add(
        &mut b,
        Regular,
        "etc/passwd",
        0o644,
        passwd.as_bytes(),
        None,
    );
    add(
        &mut b,
        Regular,
        "etc/group",
        0o644,
        b"root:x:0:\nwww:x:33:\n",
        None,
    );
    b.into_inner().unwrap()
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

/// The error and all its causes, as the CLI prints them.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
