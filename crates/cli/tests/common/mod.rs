//! Shared helpers of the vessel-runtime end-to-end tests.
//!
//! Every test gets its own [`Ctx`]: a temporary directory holding a state
//! root (`--root`) and a busybox bundle, a unique container id and a cgroup
//! under `/vessel-test/<unique>`, so that tests can run in parallel. Dropping
//! the context force-deletes every container it created.
//!
//! These tests run real containers: they need root and `/bin/busybox`
//! (busybox-static). They fail loudly, never skip, when either is missing.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binary under test.
pub const RUNTIME: &str = env!("CARGO_BIN_EXE_vessel-runtime");
/// Where the busybox-static package installs busybox.
pub const BUSYBOX: &str = "/bin/busybox";
/// Parent of every test container's cgroup.
pub const CGROUP_PARENT: &str = "vessel-test";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Panic unless the preconditions of these tests hold.
pub fn require_environment() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the vessel-runtime integration tests run real containers and must run as root \
         (they are never skipped)"
    );
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install the busybox-static package (apt-get install busybox-static)"
    );
}

fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("run busybox --list");
        assert!(out.status.success(), "busybox --list failed");
        String::from_utf8(out.stdout)
            .expect("applet names are UTF-8")
            .lines()
            .map(str::to_owned)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

/// Build a busybox root filesystem in `rootfs`.
pub fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev", "mnt", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for a in applets() {
        let link = rootfs.join("bin").join(a);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A test's private world: state root, bundle, ids, cgroup.
pub struct Ctx {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
    /// Unique name (container id and cgroup leaf).
    pub name: String,
    /// `--root`.
    pub root: PathBuf,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The config.json to write (edit freely, then call a run/create helper).
    pub config: Value,
    /// Containers to force-delete on drop.
    ids: std::cell::RefCell<Vec<String>>,
    /// A command that every vessel-runtime invocation runs under (e.g.
    /// `nsenter -t PID -m --` to run it in another mount namespace).
    pub prefix: Vec<String>,
}

impl Ctx {
    /// A fresh context whose container runs `args`.
    pub fn new(test: &str, args: &[&str]) -> Ctx {
        require_environment();
        let name = format!(
            "{test}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let tmp = tempfile::Builder::new()
            .prefix("vessel-it-")
            .tempdir()
            .unwrap();
        // Traversable by everyone: user-namespace tests run the init as a mapped uid.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        make_rootfs(&bundle.join("rootfs"));
        let out = Command::new(RUNTIME)
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vessel-runtime spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["readonly"] = json!(false);
        config["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{name}"));
        Ctx {
            tmp,
            name: name.clone(),
            root,
            bundle,
            config,
            ids: std::cell::RefCell::new(vec![name]),
            prefix: Vec::new(),
        }
    }

    /// The main container id.
    pub fn id(&self) -> &str {
        &self.name
    }

    /// A second unique id, also cleaned up on drop.
    pub fn other_id(&self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.name);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A path inside the test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The rootfs on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    /// Set the process arguments.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Add a namespace entry to linux.namespaces.
    pub fn add_namespace(&mut self, ns: Value) {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(ns);
    }

    /// Write config.json.
    pub fn write_config(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// A vessel-runtime command with `--root` set.
    pub fn cmd(&self) -> Command {
        let mut c = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(RUNTIME);
                c
            }
            None => Command::new(RUNTIME),
        };
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Run vessel-runtime with `args`, capturing its output.
    ///
    /// Output goes through files, not pipes: a container started by `create`
    /// or `run -d` inherits them and would keep a pipe open for its lifetime.
    pub fn rt(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd().args(args), self.tmp.path())
    }

    /// Like [`Ctx::rt`], but panic with the output unless it succeeded.
    pub fn rt_ok(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            out.status.success(),
            "vessel-runtime {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Like [`Ctx::rt`], but panic unless it failed; returns stderr.
    pub fn rt_err(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            !out.status.success(),
            "vessel-runtime {args:?} should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Write config.json and `run` the container in the foreground.
    pub fn run(&self) -> Output {
        self.write_config();
        let bundle = self.bundle.to_str().unwrap();
        self.rt(&["run", "--bundle", bundle, self.id()])
    }

    /// [`Ctx::run`], expecting exit code 0; returns stdout.
    pub fn run_ok(&self) -> String {
        let out = self.run();
        assert_eq!(
            out.status.code(),
            Some(0),
            "run failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Write config.json and `create` container `id`.
    pub fn create_id(&self, id: &str) -> Output {
        self.write_config();
        let bundle = self.bundle.to_str().unwrap();
        self.rt(&["create", "--bundle", bundle, id])
    }

    /// Create the main container, panicking on failure.
    pub fn create_ok(&self) {
        let out = self.create_id(self.id());
        assert!(
            out.status.success(),
            "create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Create and start the main container (which should keep running).
    pub fn start_ok(&self) {
        self.create_ok();
        let pid = self.pid();
        self.rt_ok(&["start", self.id()]);
        // `start` returns once the init was told to go on; it execs the
        // program right after. Wait for that, so tests see the program.
        Ctx::wait_until("the init to exec the container's program", || {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|exe| !exe.to_string_lossy().starts_with("/memfd:"))
                .unwrap_or(true)
        });
    }

    /// `state` of container `id` as JSON.
    pub fn state_of(&self, id: &str) -> Value {
        serde_json::from_str(&self.rt_ok(&["state", id])).unwrap()
    }

    /// `state` of the main container.
    pub fn state(&self) -> Value {
        self.state_of(self.id())
    }

    /// Host pid of the main container's init.
    pub fn pid(&self) -> i32 {
        let s = self.state();
        s["pid"].as_i64().unwrap_or_else(|| panic!("no pid in {s}")) as i32
    }

    /// Run `args` in the running main container with `exec` and return stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut a = vec!["exec", self.id()];
        a.extend_from_slice(args);
        self.rt_ok(&a)
    }

    /// Wait (up to 20 s) until `cond` holds, panicking with `what` otherwise.
    pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "gave up waiting: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the main container's status is `status`.
    pub fn wait_status(&self, status: &str) {
        Ctx::wait_until(&format!("container {} to be {status}", self.id()), || {
            self.state()["status"] == status
        });
    }

    /// This test's cgroup in v1 hierarchy `controller`.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(CGROUP_PARENT)
            .join(&self.name)
    }

    /// Read a file of this test's v1 cgroup.
    pub fn cgroup_file(&self, controller: &str, file: &str) -> String {
        let p = self.cgroup_dir(controller).join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_owned()
    }

    /// Assert that a failed create left nothing behind for container `id`.
    pub fn assert_nothing_left(&self, id: &str) {
        let state_dir = self.root.join(id);
        assert!(
            !state_dir.exists(),
            "state directory {} left behind",
            state_dir.display()
        );
        for controller in ["memory", "pids", "cpu", "freezer", "devices", "blkio"] {
            let dir = self.cgroup_dir(controller);
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
        Ctx::wait_until(&format!("no process mentioning {id}"), || {
            processes_mentioning(id).is_empty()
        });
        let out = self.rt(&["list", "--format", "json"]);
        if out.status.success() {
            let list: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                !list
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["id"].as_str() == Some(id)),
                "{id} still listed: {list}"
            );
        }
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.rt(&["delete", "--force", id]);
        }
        // Best effort: a test that failed halfway may leave an empty cgroup.
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(CGROUP_PARENT).join(&self.name));
            }
        }
    }
}

/// Pids of processes (other than this one) whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let s = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if s.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Text of an Output's stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A field of /proc/PID/status-style text (`Name:\tvalue`).
pub fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {field} in:\n{status}"))
        .trim()
}

/// Run `cmd` with stdout and stderr sent to files in `dir`; wait for it and
/// return what it wrote.
pub fn output_via_files(cmd: &mut Command, dir: &Path) -> Output {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let out_path = dir.join(format!("cmd-{n}.out"));
    let err_path = dir.join(format!("cmd-{n}.err"));
    let status = cmd
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}
