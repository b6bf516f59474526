//! `vessel images/import/tag/image inspect/history/save/rmi/load/image
//! prune/system df` end to end: the built `vessel` binary over a store in a
//! temporary directory (`VESSEL_ROOT`), with archives made by real tools
//! (tar, skopeo, umoci). Runs as root (the engine mounts overlays); fails,
//! never skips, without root or the tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the vessel image tests must run as root (they are never skipped)"
    );
}

/// A store in a temporary directory, and the tools to drive it.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Self {
        require_root();
        Store {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(VESSEL);
        c.env("VESSEL_ROOT", self.root())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("vessel runs")
    }

    /// Run, assert success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vessel {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run, assert failure, return stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vessel {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("valid JSON")
    }

    /// Every file under the root with its size (lock files left out: they
    /// are not state), to compare a store before and after.
    fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root(), &self.root(), &mut out);
        out.sort();
        out
    }

    /// A busybox root filesystem tarball (`/bin/busybox` of busybox-static
    /// and a few applet links), made with tar.
    fn busybox_tarball(&self, name: &str, extra: Option<(&str, u64)>) -> PathBuf {
        let rootfs = self.path(&format!("{name}.rootfs"));
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox (busybox-static) is installed");
        for applet in ["sh", "echo", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::write(rootfs.join("etc/motd"), "hello from busybox\n").unwrap();
        if let Some((file, size)) = extra {
            // Random, so compression cannot shrink it.
            sh(&format!(
                "head -c {size} /dev/urandom > {}",
                rootfs.join(file).display()
            ));
        }
        let tarball = self.path(&format!("{name}.tar"));
        sh(&format!(
            "tar --numeric-owner -C {} -cf {} .",
            rootfs.display(),
            tarball.display()
        ));
        tarball
    }

    /// Paths of the blobs an image needs, from `index.json`, manifests and
    /// configs read straight from disk.
    fn missing_blobs(&self) -> Vec<String> {
        let blob = |d: &str| {
            self.root()
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let read = |d: &str| -> Option<Value> {
            serde_json::from_slice(&std::fs::read(blob(d)).ok()?).ok()
        };
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.root().join("index.json")).unwrap())
                .unwrap();
        let mut missing = Vec::new();
        for m in index["manifests"].as_array().unwrap() {
            let digest = m["digest"].as_str().unwrap();
            let Some(manifest) = read(digest) else {
                missing.push(digest.to_string());
                continue;
            };
            let mut needed = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
            for l in manifest["layers"].as_array().unwrap() {
                needed.push(l["digest"].as_str().unwrap().to_string());
            }
            missing.extend(needed.into_iter().filter(|d| !blob(d).is_file()));
        }
        missing
    }

    fn blob_count(&self) -> usize {
        std::fs::read_dir(self.root().join("blobs/sha256"))
            .unwrap()
            .count()
    }

    fn dir_entries(&self, sub: &str) -> usize {
        std::fs::read_dir(self.root().join(sub)).map_or(0, |d| d.count())
    }
}

fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lock" || name.ends_with(".lock") {
            continue;
        }
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let rel = e.path().strip_prefix(base).unwrap().display().to_string();
        if m.is_dir() {
            out.push(format!("{rel}/"));
            walk(base, &e.path(), out);
        } else {
            out.push(format!("{rel} {}", m.len()));
        }
    }
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `IMAGE ID` column of `vessel images` rows naming `repo`.
fn rows<'a>(table: &'a str, repo: &str) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .skip(1)
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|c| c.first() == Some(&repo))
        .collect()
}

#[test]
fn import_then_list_tag_inspect_and_history() {
    let s = Store::new();
    let tarball = s.busybox_tarball("bb", None);
    let gz = s.path("bb.tar.gz");
    sh(&format!("gzip -c {} > {}", tarball.display(), gz.display()));
    let id = s
        .ok(&[
            "import",
            "--change",
            r#"CMD ["/bin/busybox", "cat", "/etc/motd"]"#,
            "-c",
            "ENV GREETING=hi",
            "-c",
            "WORKDIR /srv",
            "-c",
            "EXPOSE 8080/tcp",
            "-c",
            "LABEL org.example=yes",
            "-c",
            "VOLUME /data",
            "-c",
            "USER root",
            "-m",
            "busybox by hand",
            gz.to_str().unwrap(),
            "localhost/busybox:1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let table = s.ok(&["images"]);
    assert!(
        table.starts_with("REPOSITORY") && table.lines().next().unwrap().contains("IMAGE ID"),
        "{table}"
    );
    let r = rows(&table, "localhost/busybox");
    assert_eq!(r.len(), 1, "{table}");
    assert_eq!(r[0][1], "1");
    assert_eq!(r[0][2], &id[7..19]);
    assert!(r[0][3].ends_with("ago"), "{table}");
    assert!(r[0][4].ends_with("MB"), "{table}");

    s.ok(&["tag", "localhost/busybox:1", "bb:latest"]);
    assert_eq!(
        s.ok(&["images", "-q"]).lines().collect::<Vec<_>>(),
        [&id[7..19], &id[7..19]]
    );
    assert!(s.ok(&["images", "--no-trunc"]).contains(&id));
    let list = s.json(&["image", "ls", "--format", "json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["Id"], id.as_str());
    assert_eq!(
        list[0]["RepoTags"],
        serde_json::json!(["bb:latest", "localhost/busybox:1"])
    );
    assert!(list[0]["Size"].as_u64().unwrap() > 1_000_000);

    let inspect = s.json(&["image", "inspect", "bb"]);
    let i = &inspect[0];
    assert_eq!(i["Id"], id.as_str());
    assert_eq!(
        i["Config"]["Cmd"],
        serde_json::json!(["/bin/busybox", "cat", "/etc/motd"])
    );
    assert_eq!(i["Config"]["Env"], serde_json::json!(["GREETING=hi"]));
    assert_eq!(i["Config"]["WorkingDir"], "/srv");
    assert_eq!(i["Config"]["User"], "root");
    assert_eq!(
        i["Config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(i["Config"]["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(i["Config"]["Labels"]["org.example"], "yes");
    assert_eq!(i["Config"]["Entrypoint"], Value::Null);
    assert_eq!(i["Architecture"], "amd64");
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(i["Comment"], "busybox by hand");
    assert_eq!(
        s.ok(&["image", "inspect", "--format", "{{.Id}}", &id[7..15]])
            .trim(),
        id
    );

    let history = s.ok(&["image", "history", "bb"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{history}"
    );
    assert_eq!(lines.len(), 2, "{history}");
    assert!(
        lines[1].starts_with(&id[7..19]) && lines[1].contains("busybox by hand"),
        "{history}"
    );
    let h = s.json(&["image", "history", "--format", "json", "bb"]);
    assert_eq!(h[0]["Comment"], "busybox by hand");
    assert!(h[0]["Size"].as_u64().unwrap() > 1_000_000);

    // A missing image and a bad change are clear errors.
    let e = s.fails(&["image", "inspect", "nope"]);
    assert!(e.contains("No such image: nope"), "{e}");
    let e = s.fails(&["import", "-c", "RUN true", tarball.to_str().unwrap(), "x"]);
    assert!(e.contains("\"RUN\" is not supported"), "{e}");
    // Import from stdin, untagged: a <none> image.
    let out = s
        .cmd(&["import", "-"])
        .stdin(std::fs::File::open(&tarball).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&s.ok(&["images"]), "<none>").len(), 1);
}

#[test]
fn save_rmi_load_round_trip_keeps_the_image_id() {
    let s = Store::new();
    let tarball = s.busybox_tarball("bb", None);
    let id = s.ok(&["import", tarball.to_str().unwrap(), "localhost/rt:1"]);
    s.ok(&["tag", "localhost/rt:1", "localhost/rt:2"]);
    let archive = s.path("rt.tar");
    s.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "localhost/rt:1",
        "localhost/rt:2",
    ]);
    // To stdout when it is not a terminal.
    let piped = s.run(&["save", "localhost/rt:1"]);
    assert!(piped.status.success());
    assert!(piped.stdout.len() > 1_000_000);

    let out = s.ok(&["rmi", "localhost/rt:1"]);
    assert_eq!(out, "Untagged: localhost/rt:1\n");
    let out = s.ok(&["rmi", "localhost/rt:2"]);
    assert_eq!(out, format!("Untagged: localhost/rt:2\nDeleted: {id}"));
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.blob_count(), 0, "rmi collects the image's blobs");

    let out = s.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        out,
        "Loaded image: localhost/rt:1\nLoaded image: localhost/rt:2\n"
    );
    let list = s.json(&["images", "--format", "json"]);
    assert_eq!(list[0]["Id"], id.trim());
    assert_eq!(list.as_array().unwrap().len(), 1);
    // load from stdin, quietly.
    let out = s
        .cmd(&["load", "-q"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn archives_made_by_skopeo_and_umoci_load() {
    let s = Store::new();
    let layout = s.path("layout");
    let rootfs = s.path("u.rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let l = layout.display();
    sh(&format!(
        "umoci init --layout {l} && umoci new --image {l}:latest && \
         umoci insert --image {l}:latest {} / && \
         umoci config --image {l}:latest --config.cmd=/bin/busybox --config.cmd=echo \
           --config.cmd=made-by-umoci --config.env=FROM=umoci",
        rootfs.display()
    ));
    let docker = s.path("docker.tar");
    let oci = s.path("oci.tar");
    sh(&format!(
        "skopeo copy -q oci:{l}:latest docker-archive:{}:localhost/skopeo-docker:1 && \
         skopeo copy -q oci:{l}:latest oci-archive:{}:localhost/skopeo-oci:1",
        docker.display(),
        oci.display()
    ));
    let out = s.ok(&["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: localhost/skopeo-docker:1\n");
    let out = s.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: localhost/skopeo-oci:1\n");
    // umoci's own layout, tarred: no full name inside, so an untagged image.
    let plain = s.path("layout.tar");
    sh(&format!("tar -C {l} -cf {} .", plain.display()));
    let out = s.ok(&["load", "-i", plain.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
    for name in ["localhost/skopeo-docker:1", "localhost/skopeo-oci:1"] {
        let i = s.json(&["image", "inspect", name]);
        assert_eq!(
            i[0]["Config"]["Cmd"],
            serde_json::json!(["/bin/busybox", "echo", "made-by-umoci"]),
            "{name}"
        );
        assert!(
            i[0]["Config"]["Env"].to_string().contains("FROM=umoci"),
            "{name}"
        );
    }
    assert!(s.missing_blobs().is_empty());
}

#[test]
fn an_image_in_use_cannot_be_removed_and_prune_and_df_account_for_it() {
    let s = Store::new();
    let tarball = s.busybox_tarball("bb", None);
    let id = s.ok(&[
        "import",
        "-c",
        "CMD /bin/true",
        tarball.to_str().unwrap(),
        "localhost/used",
    ]);
    s.ok(&["import", tarball.to_str().unwrap(), "localhost/unused"]);
    s.ok(&["import", "-c", "CMD /bin/false", tarball.to_str().unwrap()]);
    s.ok(&["create", "--name", "holder", "localhost/used"]);

    let e = s.fails(&["rmi", "localhost/used"]);
    assert!(e.contains("holder") && e.contains(&id[7..19]), "{e}");
    let e = s.fails(&["rmi", &id[7..19]]);
    assert!(e.contains("holder"), "{e}");
    assert!(s.ok(&["images"]).contains("localhost/used"));

    let df = s.ok(&["system", "df"]);
    let images_row: Vec<&str> = df.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&images_row[..3], ["Images", "3", "1"], "{df}");
    let containers_row: Vec<&str> = df.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(&containers_row[..3], ["Containers", "1", "0"], "{df}");
    let d = s.json(&["system", "df", "--format", "json"]);
    assert_eq!(d[2]["Type"], "Layers");
    assert_eq!(d[2]["Active"], 1, "the container's layer");

    // prune: only the untagged image goes; -a: also the unused tagged one.
    let out = s.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(s.ok(&["images", "-q"]).lines().count(), 2);
    let out = s.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: localhost/unused:latest"), "{out}");
    assert!(!out.contains("localhost/used"), "{out}");

    // Forced: untagged, but kept while the container exists.
    let out = s.ok(&["rmi", "-f", "localhost/used"]);
    assert_eq!(out, "Untagged: localhost/used:latest\n");
    assert_eq!(rows(&s.ok(&["images"]), "<none>").len(), 1);
    assert!(s.missing_blobs().is_empty());
    s.ok(&["rm", "holder"]);
    s.ok(&["image", "prune", "-f"]);
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.blob_count(), 0);
    assert_eq!(s.dir_entries("snapshots/active"), 0);
}

#[test]
fn truncated_and_corrupt_input_change_nothing() {
    let s = Store::new();
    let tarball = s.busybox_tarball("bb", None);
    s.ok(&["import", tarball.to_str().unwrap(), "localhost/keep"]);
    let archive = s.path("keep.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "localhost/keep"]);
    s.ok(&["tag", "localhost/keep", "localhost/other"]);
    s.ok(&["rmi", "localhost/keep"]);
    let before = s.listing();
    let images = s.ok(&["images", "--format", "json"]);

    let data = std::fs::read(&archive).unwrap();
    let truncated = s.path("truncated.tar");
    std::fs::write(&truncated, &data[..data.len() * 2 / 3]).unwrap();
    let e = s.fails(&["load", "-i", truncated.to_str().unwrap()]);
    assert!(e.contains("truncated"), "{e}");

    let corrupt = s.path("corrupt.tar");
    std::fs::write(
        &corrupt,
        b"\x00garbage that is no tar archive at all, not even a header".repeat(20),
    )
    .unwrap();
    let e = s.fails(&["import", corrupt.to_str().unwrap(), "localhost/bad"]);
    assert!(e.contains("not a valid tar archive"), "{e}");
    let e = s.fails(&["load", "-i", corrupt.to_str().unwrap()]);
    assert!(e.contains(corrupt.to_str().unwrap()), "{e}");

    let bb = std::fs::read(&tarball).unwrap();
    let cut = s.path("cut.tar");
    std::fs::write(&cut, &bb[..bb.len() / 2]).unwrap();
    let e = s.fails(&["import", cut.to_str().unwrap(), "localhost/cut"]);
    assert!(e.contains("truncated"), "{e}");

    let e = s.fails(&["load", "-i", s.path("absent.tar").to_str().unwrap()]);
    assert!(e.contains("absent.tar"), "{e}");

    assert_eq!(s.listing(), before, "the store is exactly as before");
    assert_eq!(s.ok(&["images", "--format", "json"]), images);
}

#[test]
fn a_load_killed_midway_leaves_a_consistent_store() {
    let s = Store::new();
    // A big archive: 192 MiB of random data in the layer.
    let tarball = s.busybox_tarball("big", Some(("big.bin", 192 << 20)));
    s.ok(&["import", tarball.to_str().unwrap(), "localhost/big"]);
    let archive = s.path("big-image.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "localhost/big"]);
    s.ok(&["rmi", "localhost/big"]);
    let small = s.busybox_tarball("small", None);
    s.ok(&["import", small.to_str().unwrap(), "localhost/small"]);
    let blobs_before = s.blob_count();

    let mut child = s
        .cmd(&["load", "-i", archive.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the big layer is being written, then kill -9.
    let ingest = s.root().join("ingest");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the load finished ({status}) before it could be killed");
        }
        let writing = std::fs::read_dir(&ingest)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().is_ok_and(|m| m.len() > 8 << 20))
            })
            .unwrap_or(false);
        if writing {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    // Consistent: no name points at missing blobs, the big image is not
    // named, the rest works.
    assert!(s.missing_blobs().is_empty(), "{:?}", s.missing_blobs());
    let table = s.ok(&["images"]);
    assert!(!table.contains("localhost/big"), "{table}");
    assert!(table.contains("localhost/small"), "{table}");
    assert!(
        s.dir_entries("ingest") > 0,
        "the killed load left its partial blob"
    );

    // Collection removes the leftovers (dead lease, partial ingest, blobs).
    s.ok(&["image", "prune", "-f"]);
    assert_eq!(s.dir_entries("ingest"), 0);
    assert_eq!(s.dir_entries("leases"), 0);
    assert_eq!(s.blob_count(), blobs_before);

    // And a new load works.
    let out = s.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: localhost/big:latest\n");
    assert!(s.missing_blobs().is_empty());
}

#[test]
fn system_prune_removes_stopped_containers_then_unused_images() {
    let s = Store::new();
    let tarball = s.busybox_tarball("bb", None);
    s.ok(&[
        "import",
        "-c",
        "CMD /bin/true",
        tarball.to_str().unwrap(),
        "localhost/pruned",
    ]);
    let id = s.ok(&["create", "--name", "stopped", "localhost/pruned"]);
    // Without -f it asks; an answer that is not "y" (here: no stdin) keeps everything.
    let out = s.ok(&["system", "prune", "-a"]);
    assert!(
        out.contains("Are you sure you want to continue? [y/N]"),
        "{out}"
    );
    assert_eq!(s.ok(&["images", "-q"]).lines().count(), 1);

    let out = s.ok(&["system", "prune", "-a", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{}", id.trim())),
        "{out}"
    );
    assert!(out.contains("untagged: localhost/pruned:latest"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.blob_count(), 0);
    assert_eq!(s.dir_entries("snapshots/active"), 0);
}
