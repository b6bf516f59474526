//! containerd drives vessel-runtime the way Kubernetes-style stacks do.
//!
//! Each test starts a private containerd (root, state and sockets in a
//! temporary directory, its own namespace), imports a busybox OCI image built
//! here, and runs `ctr run --rm --runc-binary RUNTIME`: an `echo`, a `dd` of
//! 64 MiB with no limit (exit 0) and the same `dd` under `--memory-limit` of
//! 32 MiB (OOM kill, exit 137). The same checks run against runc as a
//! control, so a failure of the vessel test is vessel's and not the setup's.
//!
//! Needs root, containerd, ctr and busybox-static (scripts/install-deps.sh);
//! without them the tests fail with a message, they never skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use tempfile::TempDir;

const IMAGE: &str = "docker.io/vessel-test/busybox:latest";
const MEMORY_LIMIT: &str = "33554432";
/// Upper bound for one ctr command; containers here finish in well under a second.
const CTR_TIMEOUT_SECS: &str = "60";

#[test]
fn containerd_runs_vessel_runtime() {
    check_runtime(Path::new(env!("CARGO_BIN_EXE_vessel-runtime")), "vessel");
}

#[test]
fn containerd_runs_runc_as_control() {
    let runc = which("runc").expect("runc is not installed: run scripts/install-deps.sh");
    check_runtime(&runc, "runc");
}

fn check_runtime(runtime: &Path, tag: &str) {
    preflight();
    let ctd = Containerd::start(tag).unwrap_or_else(|e| panic!("cannot start containerd: {e:#}"));
    if let Err(e) = run_checks(&ctd, runtime) {
        panic!(
            "containerd with --runc-binary {}: {e:#}\n--- containerd log (tail) ---\n{}",
            runtime.display(),
            ctd.log_tail()
        );
    }
}

fn run_checks(ctd: &Containerd, runtime: &Path) -> Result<()> {
    let image = build_busybox_image(ctd.dir.path()).context("building the busybox image")?;
    let out = ctd.ctr(&["images", "import", path_str(&image)?])?;
    ensure!(
        out.status.success(),
        "ctr images import failed: {}",
        show(&out)
    );

    let rt = path_str(runtime)?;
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rt,
        IMAGE,
        "echo-1",
        "echo",
        "hello-from-containerd",
    ])?;
    ensure!(
        out.status.code() == Some(0),
        "echo: expected exit 0, {}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.trim() == "hello-from-containerd",
        "echo: unexpected output: {}",
        show(&out)
    );

    let dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];
    let mut args = vec!["run", "--rm", "--runc-binary", rt, IMAGE, "dd-free"];
    args.extend(dd);
    let out = ctd.ctr(&args)?;
    ensure!(
        out.status.code() == Some(0),
        "dd without a memory limit: expected exit 0, {}",
        show(&out)
    );

    let mut args = vec![
        "run",
        "--rm",
        "--runc-binary",
        rt,
        "--memory-limit",
        MEMORY_LIMIT,
        IMAGE,
        "dd-limited",
    ];
    args.extend(dd);
    let out = ctd.ctr(&args)?;
    ensure!(
        out.status.code() == Some(137),
        "dd under --memory-limit {MEMORY_LIMIT}: expected the OOM killer's exit 137, {}",
        show(&out)
    );

    for id in ["echo-1", "dd-free", "dd-limited"] {
        let cg = Path::new("/sys/fs/cgroup/memory")
            .join(&ctd.namespace)
            .join(id);
        ensure!(
            !cg.exists(),
            "{} is left behind after ctr run --rm",
            cg.display()
        );
    }
    Ok(())
}

/// Fail loudly, with the fix, when the machine cannot run this test.
fn preflight() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the containerd tests run real containers and need root"
    );
    for tool in ["containerd", "ctr", "timeout"] {
        assert!(
            which(tool).is_some(),
            "{tool} is not installed: run scripts/install-deps.sh"
        );
    }
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: run scripts/install-deps.sh (busybox-static)"
    );
}

/// A private containerd: killed, and everything it made removed, on drop.
struct Containerd {
    dir: TempDir,
    child: Child,
    socket: PathBuf,
    /// containerd namespace; also names the runtime's state root
    /// (/run/containerd/runc/NS) and the cgroup parent (/NS) the shim uses.
    namespace: String,
}

impl Containerd {
    fn start(tag: &str) -> Result<Containerd> {
        // A short path: the sockets must fit in sun_path (108 bytes).
        let dir = tempfile::Builder::new()
            .prefix("vessel-ctd.")
            .tempdir_in("/tmp")?;
        let namespace = format!("vessel-test-{tag}-{}", std::process::id());
        let socket = dir.path().join("c.sock");
        let d = dir.path().display();
        // The CRI plugin needs CNI and more; nothing here uses it.
        let config = format!(
            "version = 2\n\
             root = \"{d}/root\"\n\
             state = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", \
             \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.internal.v1.opt\"]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n\
             [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n"
        );
        let config_path = dir.path().join("config.toml");
        fs::write(&config_path, config)?;
        let log = fs::File::create(dir.path().join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning containerd")?;
        let mut ctd = Containerd {
            dir,
            child,
            socket,
            namespace,
        };
        ctd.wait_ready()?;
        Ok(ctd)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("containerd exited with {status}:\n{}", self.log_tail());
            }
            if self.socket.exists() && self.ctr(&["version"])?.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer within 20 s:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `ctr` against this containerd, in its namespace, with a timeout.
    fn ctr(&self, args: &[&str]) -> Result<Output> {
        Command::new("timeout")
            .args(["-k", "5", CTR_TIMEOUT_SECS, "ctr", "--address"])
            .arg(&self.socket)
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running ctr {}", args.join(" ")))
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Best effort: tasks, containers and image of our namespace go first,
    /// while containerd can still clean up after them.
    fn remove_contents(&self) {
        let list = |what: &str| -> Vec<String> {
            self.ctr(&[what, "ls", "-q"])
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        for id in list("tasks") {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
            let _ = self.ctr(&["tasks", "delete", "--force", &id]);
        }
        for id in list("containers") {
            let _ = self.ctr(&["containers", "delete", &id]);
        }
        let _ = self.ctr(&["images", "rm", IMAGE]);
    }

    /// Shims of our namespace that are still alive (they outlive containerd).
    fn our_shims(&self) -> Vec<i32> {
        let Ok(procs) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.first()
                    .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"-namespace" && w[1] == self.namespace.as_bytes())
            })
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_contents();
        // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.our_shims() {
            // SAFETY: kill(2) on a shim started for our private namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Snapshots and bundle rootfs mounts live under our directory.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.path().to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.namespace));
        if let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let _ = fs::remove_dir(c.path().join(&self.namespace));
            }
        }
    }
}

/// Write an OCI image archive (oci-layout, index.json, blobs) holding one
/// uncompressed layer: static busybox with all its applets.
fn build_busybox_image(work: &Path) -> Result<PathBuf> {
    let rootfs = work.join("image-rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    let list = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8(list.stdout)?.lines() {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;

    let layout = work.join("image-oci");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let layer = work.join("layer.tar");
    tar(&[
        "--numeric-owner",
        "-C",
        path_str(&rootfs)?,
        "-cf",
        path_str(&layer)?,
        ".",
    ])?;
    let (layer_digest, layer_size) = add_blob(&blobs, &fs::read(&layer)?)?;
    fs::remove_file(&layer)?;

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let (config_digest, config_size) = add_blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = add_blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": { "architecture": "amd64", "os": "linux" },
            // ctr images import names the image after this annotation.
            "annotations": { "io.containerd.image.name": IMAGE },
        }],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let archive = work.join("busybox-oci.tar");
    tar(&["-C", path_str(&layout)?, "-cf", path_str(&archive)?, "."])?;
    Ok(archive)
}

/// Store `data` as a blob named by its digest; returns ("sha256:HEX", size).
fn add_blob(blobs: &Path, data: &[u8]) -> Result<(String, usize)> {
    let tmp = blobs.join("incoming");
    fs::write(&tmp, data)?;
    let out = Command::new("sha256sum").arg(&tmp).output()?;
    ensure!(out.status.success(), "sha256sum failed: {}", show(&out));
    let hex = String::from_utf8(out.stdout)?
        .split_whitespace()
        .next()
        .context("empty sha256sum output")?
        .to_owned();
    fs::rename(&tmp, blobs.join(&hex))?;
    Ok((format!("sha256:{hex}"), data.len()))
}

fn tar(args: &[&str]) -> Result<()> {
    let out = Command::new("tar").args(args).output()?;
    ensure!(
        out.status.success(),
        "tar {}: {}",
        args.join(" "),
        show(&out)
    );
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}
