//! Test helpers: hand-built layers (including hostile ones) and checks.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Tests that need root fail loudly without it (never skip).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (chown, mknod, mount)");
}

/// A tar built entry by entry with raw names (hostile ones included).
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

fn header(kind: tar::EntryType, path: &str, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    // Raw bytes: `set_path` would refuse `..`, which is the point here.
    let name = path.as_bytes();
    assert!(name.len() <= 100, "test paths stay short");
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    let t = target.as_bytes();
    assert!(t.len() <= 100);
    h.as_old_mut().linkname = [0; 100];
    h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &str) -> &mut Self {
        self.raw(
            header(tar::EntryType::Regular, path, 0o644),
            data.as_bytes(),
        )
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        data: &str,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, path, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.raw(h, data.as_bytes())
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.raw(header(tar::EntryType::Directory, path, mode), b"")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, path, 0o777);
        set_link(&mut h, target);
        self.raw(h, b"")
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Link, path, 0o644);
        set_link(&mut h, target);
        self.raw(h, b"")
    }

    pub fn device(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = header(kind, path, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.raw(h, b"")
    }

    /// A file with PAX `SCHILY.xattr.*` records.
    pub fn file_xattrs(&mut self, path: &str, data: &str, xattrs: &[(&str, &str)]) -> &mut Self {
        let recs: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_bytes()))
            .collect();
        self.b
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self.file(path, data)
    }

    pub fn tar(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// Everything under `dir` (names, kinds, modes, owners, contents, link
/// targets), to prove that a directory was not touched.
pub fn fingerprint(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
    let m = std::fs::symlink_metadata(p).unwrap();
    let rel = p.strip_prefix(base).unwrap().display().to_string();
    let extra = if m.file_type().is_symlink() {
        std::fs::read_link(p).unwrap().display().to_string()
    } else if m.is_file() {
        String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
    } else {
        String::new()
    };
    out.push(format!(
        "{rel} {:o} {}:{} {extra}",
        m.mode(),
        m.uid(),
        m.gid()
    ));
    if m.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            walk(base, &e.unwrap().path(), out);
        }
    }
}

/// An image config for these layers (uncompressed tars).
pub fn config_for(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| vessel_image::Digest::of(l).to_string())
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// A `docker save` archive (classic layout: `<id>/layer.tar`, `<id>.json`,
/// `manifest.json`, `repositories`) of one image.
pub fn docker_archive(layers: &[Vec<u8>], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data).unwrap();
    };
    let config_name = format!("{}.json", vessel_image::Digest::of(config).hex());
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("layer{i}/layer.tar");
        add(&p, l);
        paths.push(p);
    }
    add(&config_name, config);
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": tags, "Layers": paths}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap()
}

/// A small busybox image's layers: busybox and links, then a layer that
/// whites out a file and adds one.
pub fn busybox_layers() -> Vec<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut l0 = Layer::new();
    l0.dir("bin/", 0o755)
        .dir("etc/", 0o755)
        .file("etc/motd", "hello")
        .file("etc/gone", "bye")
        .dir("tmp/", 0o1777)
        .symlink("bin/sh", "busybox");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(busybox.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    l0.b_append(&mut h, "bin/busybox", &busybox);
    let l0 = l0.tar();
    let l1 = Layer::new()
        .file("etc/.wh.gone", "")
        .file("etc/added", "new")
        .tar();
    vec![l0, l1]
}

impl Layer {
    pub fn b_append(&mut self, h: &mut tar::Header, path: &str, data: &[u8]) -> &mut Self {
        self.b.append_data(h, path, data).unwrap();
        self
    }
}

/// Every file and directory under a store root with its size (lock files
/// left out: they are not state), to prove a failed operation changed
/// nothing.
pub fn store_listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    list_into(root, root, &mut out);
    out.sort();
    out
}

fn list_into(base: &Path, p: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lock" || name.ends_with(".lock") {
            continue;
        }
        let m = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        if m.is_dir() {
            out.push(format!("{rel}/"));
            list_into(base, &path, out);
        } else {
            out.push(format!("{rel} {}", m.len()));
        }
    }
}

/// A busybox root filesystem as one tarball (what `import` takes).
pub fn busybox_rootfs() -> Vec<u8> {
    busybox_layers().remove(0)
}
