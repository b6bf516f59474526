//! Helpers for the `vessel` engine tests: a private store with the busybox
//! image (made by scripts/make-busybox-image.sh from the host's
//! busybox-static, as the README's first command makes it), and a way to run
//! the built `vessel` binary against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const IMAGE: &str = "localhost/busybox";

/// Tests that run containers fail loudly without root (never skip).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs containers and needs root"
    );
}

/// A private vessel root and run root with the busybox image.
pub struct Store {
    pub dir: tempfile::TempDir,
}

impl Store {
    pub fn new() -> Store {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("vessel-test")
            .tempdir()
            .unwrap();
        let s = Store { dir };
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-busybox-image.sh");
        let out = Command::new("bash")
            .arg(script)
            .env("VESSEL", env!("CARGO_BIN_EXE_vessel"))
            .env("VESSEL_ROOT", s.root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make-busybox-image.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `vessel --root … --runroot … ARGS`, ready to run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vessel"));
        c.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `vessel ARGS` to completion.
    pub fn vessel(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run `vessel ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.vessel(args);
        assert!(
            out.status.success(),
            "vessel {args:?} failed with {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `vessel inspect -f TEMPLATE C`, trimmed.
    pub fn inspect(&self, c: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, c]).trim().to_owned()
    }

    /// Every mount under this store that a container made (none may be
    /// left after removal). The run root's `netns` directory is mounted on
    /// itself once, for good, as `ip netns` does with /run/netns (so that a
    /// container's namespace file is not copied into other mount
    /// namespaces); that one is the store's, not a container's.
    pub fn mounts(&self) -> Vec<String> {
        let netns_dir = self.runroot().join("netns").to_string_lossy().into_owned();
        self.all_mounts()
            .into_iter()
            .filter(|m| *m != netns_dir)
            .collect()
    }

    fn all_mounts(&self) -> Vec<String> {
        let root = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Leave nothing running or mounted behind a failed test.
        let _ = self.cmd(&["ps", "-aq", "--no-trunc"]).output().map(|o| {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        });
        for m in self.all_mounts().iter().rev() {
            let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// vessel's nft table as `nft list` prints it (empty if there is none).
pub fn nft_table() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "vessel"])
        .output()
        .expect("run nft (scripts/install-deps.sh installs nftables)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Store {
    /// `vessel volume ls -q`, sorted.
    pub fn volume_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// Every listed volume is whole (inspectable, its data directory
    /// exists) and nothing else is in the volume store but hidden
    /// leftovers and the lock.
    pub fn assert_volumes_consistent(&self) {
        let names = self.volume_names();
        for n in &names {
            let mp = self.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", n]);
            assert!(
                Path::new(mp.trim()).is_dir(),
                "volume {n}: data dir {mp:?} missing"
            );
        }
        let dir = self.root().join("volumes");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                assert!(
                    f.starts_with('.') || names.contains(&f),
                    "{f} is in {} but not listed",
                    dir.display()
                );
            }
        }
    }

    /// An image `NAME` made from busybox with `/seed` (owned by 33:33, mode
    /// 0750, a file and a symlink) declared as a VOLUME.
    pub fn make_seed_image(&self, name: &str) {
        self.ok(&[
            "run",
            "--name",
            "seed-base",
            IMAGE,
            "sh",
            "-c",
            "mkdir /seed && echo seeded >/seed/file && ln -s /etc/passwd /seed/link \
             && chown -R 33:33 /seed && chmod 750 /seed",
        ]);
        let tar = self.dir.path().join("seed.tar");
        self.ok(&["export", "-o", tar.to_str().unwrap(), "seed-base"]);
        self.ok(&["rm", "seed-base"]);
        self.ok(&[
            "import",
            "--change",
            "VOLUME /seed",
            "--change",
            r#"CMD ["sh"]"#,
            tar.to_str().unwrap(),
            name,
        ]);
    }
}
