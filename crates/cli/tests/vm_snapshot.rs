//! Snapshots across processes, through the `vessel` binary: a guest that
//! counts on its serial console (crates/vmm/tests/guests/counter.s,
//! assembled here) is paused and snapshotted over the API, its VMM is
//! killed with SIGKILL, and new VMMs (`PUT /snapshot/load` on a fresh
//! `--api-sock`, and `--restore`) go on counting without a gap or a
//! repeat. Broken snapshots are refused with a clear error and nothing
//! started. Fails, never skips, without /dev/kvm.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vessel_testkit::guests::{build_guest, require_kvm};

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");
const READY: &str = "counter guest ready\n";
/// Only a hung VMM ever waits this long.
const PATIENCE: Duration = Duration::from_secs(120);

fn wait_for(msg: &str, mut what: impl FnMut() -> bool) {
    let start = Instant::now();
    while !what() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {msg}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `vessel vm run` child writing its console to `console`.
struct Vmm {
    child: Child,
    sock: Option<PathBuf>,
    console: PathBuf,
}

impl Vmm {
    fn start(dir: &Path, name: &str, args: &[&str], api: bool) -> Vmm {
        let console = dir.join(format!("{name}.console"));
        let sock = api.then(|| dir.join(format!("{name}.sock")));
        let mut cmd = Command::new(VESSEL);
        cmd.args(["vm", "run"])
            .arg(format!("--console=file:{}", console.display()))
            .args(args);
        if let Some(s) = &sock {
            cmd.arg("--api-sock").arg(s);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vessel");
        let vmm = Vmm {
            child,
            sock,
            console,
        };
        if let Some(s) = &vmm.sock {
            wait_for("the API socket", || s.exists());
        }
        vmm
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let sock = self.sock.as_ref().expect("an API socket");
        vessel_testkit::api::call(sock, method, path, body)
    }

    fn state(&self) -> String {
        let (_, body) = self.call("GET", "/", "");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["state"].as_str().unwrap_or_default().to_owned()
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    fn wait_lines(&self, n: usize) {
        wait_for(&format!("{n} lines on {}", self.console.display()), || {
            self.console().matches('\n').count() >= n
        });
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Waits for the process to end; exit code and stderr.
    fn wait(mut self) -> (i32, String) {
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code().unwrap_or(-1), err)
    }
}

/// Asserts that `console` counts 0, 1, 2, … with nothing missing or twice
/// (a last partial line is ignored); returns how many lines.
fn assert_counts(console: &str) -> usize {
    let body = console
        .strip_prefix(READY)
        .unwrap_or_else(|| panic!("{console:?}"));
    let complete = &body[..body.rfind('\n').map_or(0, |i| i + 1)];
    for (i, line) in complete.lines().enumerate() {
        assert_eq!(line, i.to_string(), "line {i} of {console:?}");
    }
    complete.lines().count()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Boots the counter over the API, pauses it, snapshots it and kills the
/// VMM with SIGKILL; returns what the guest printed.
fn snapshot_then_kill(dir: &Path, guest: &Path, state: &Path, mem: &Path) -> String {
    let vmm = Vmm::start(
        dir,
        "first",
        &["--kernel", p(guest), "--memory", "32"],
        true,
    );
    vmm.wait_lines(5);
    let create = format!(
        r#"{{"snapshot_type": "Full", "snapshot_path": "{}", "mem_file_path": "{}"}}"#,
        p(state),
        p(mem)
    );
    let (status, body) = vmm.call("PUT", "/snapshot/create", &create);
    assert_eq!(status, 400, "a running VM was snapshotted: {body}");
    assert!(body.contains("must be paused"), "{body}");
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Paused"}"#).0, 204);
    let (status, body) = vmm.call("PUT", "/snapshot/create", &create);
    assert_eq!(status, 204, "{body}");
    assert_eq!(vmm.state(), "Paused");
    let before = vmm.console();
    vmm.kill();
    before
}

#[test]
fn a_killed_vmms_counting_guest_goes_on_in_new_vmms_without_gap_or_repeat() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let guest = build_guest("counter", d);
    let (state, mem) = (d.join("vm.state"), d.join("vm.mem"));
    let before = snapshot_then_kill(d, &guest, &state, &mem);
    let counted = assert_counts(&before);
    let mem_bytes = std::fs::read(&mem).expect("memory file");
    assert_eq!(mem_bytes.len(), 32 << 20);

    // A fresh VMM with only an API socket loads it (Firecracker's body).
    let vmm = Vmm::start(d, "second", &[], true);
    assert_eq!(vmm.state(), "Not started");
    let load = format!(
        r#"{{"snapshot_path": "{}", "mem_backend": {{"backend_type": "File", "backend_path": "{}"}}, "resume_vm": true}}"#,
        p(&state),
        p(&mem)
    );
    let (status, body) = vmm.call("PUT", "/snapshot/load", &load);
    assert_eq!(status, 204, "{body}");
    assert_eq!(vmm.state(), "Running");
    vmm.wait_lines(5);
    let (status, body) = vmm.call("PUT", "/snapshot/load", &load);
    assert_eq!(status, 400, "a second load: {body}");
    let after = vmm.console();
    vmm.kill();
    assert!(assert_counts(&format!("{before}{after}")) >= counted + 4);

    // `--restore`, from the same files: the same point, counting on.
    let vmm = Vmm::start(
        d,
        "third",
        &["--restore", p(&state), "--restore-mem", p(&mem)],
        false,
    );
    vmm.wait_lines(5);
    let third = vmm.console();
    vmm.kill();
    assert_counts(&format!("{before}{third}"));

    // Restored guests wrote to private copies: the memory file is intact.
    assert!(std::fs::read(&mem).expect("memory file") == mem_bytes);
}

#[test]
fn broken_snapshots_are_refused_and_nothing_starts() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let guest = build_guest("counter", d);
    let (state, mem) = (d.join("vm.state"), d.join("vm.mem"));
    snapshot_then_kill(d, &guest, &state, &mem);
    let good = std::fs::read(&state).expect("state");

    let broken = |name: &str, bytes: &[u8]| {
        let path = d.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let truncated = broken("truncated", &good[..good.len() - 100]);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let corrupt = broken("corrupt", &flipped);
    // Version 1: a snapshot from before virtio devices were saved.
    let mut v1 = good.clone();
    v1[8] = 1;
    let version = broken("version", &v1);
    let magic = broken("magic", b"not a snapshot at all, just some text\n");
    let short_mem = d.join("short.mem");
    std::fs::copy(&mem, &short_mem).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&short_mem)
        .and_then(|f| f.set_len(16 << 20))
        .expect("truncate memory");

    // --restore: exit 1, the reason on stderr, no console opened.
    for (state_file, mem_file, reason) in [
        (&truncated, &mem, "truncated"),
        (&corrupt, &mem, "checksum does not match"),
        (&version, &mem, "format version 1"),
        (&magic, &mem, "magic number"),
        (&state, &short_mem, "16777216 bytes"),
    ] {
        let vmm = Vmm::start(
            d,
            "refused",
            &["--restore", p(state_file), "--restore-mem", p(mem_file)],
            false,
        );
        let console = vmm.console.clone();
        let (code, err) = vmm.wait();
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(reason), "{reason}: {err}");
        assert!(!console.exists(), "a VM was started for {reason}");
    }

    // Over the API: 400, still "Not started", and a good load works after.
    let vmm = Vmm::start(d, "api", &[], true);
    let load = |s: &Path, m: &Path| {
        format!(
            r#"{{"snapshot_path": "{}", "mem_file_path": "{}", "resume_vm": true}}"#,
            p(s),
            p(m)
        )
    };
    for (s, m, reason) in [
        (&corrupt, &mem, "checksum does not match"),
        (&state, &short_mem, "16777216 bytes"),
        (&d.join("missing"), &mem, "missing"),
    ] {
        let (status, body) = vmm.call("PUT", "/snapshot/load", &load(s, m));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(reason), "{reason}: {body}");
        assert_eq!(vmm.state(), "Not started");
    }
    assert!(!vmm.console.exists());
    let (status, body) = vmm.call("PUT", "/snapshot/load", &load(&state, &mem));
    assert_eq!(status, 204, "{body}");
    vmm.wait_lines(3);
    vmm.kill();

    // A VM configured for boot does not load a snapshot (as Firecracker).
    let vmm = Vmm::start(d, "configured", &[], true);
    let boot = format!(r#"{{"kernel_image_path": "{}"}}"#, p(&guest));
    assert_eq!(vmm.call("PUT", "/boot-source", &boot).0, 204);
    let (status, body) = vmm.call("PUT", "/snapshot/load", &load(&state, &mem));
    assert_eq!(status, 400);
    assert!(body.contains("not allowed after configuring"), "{body}");
    vmm.kill();
}

/// SIGTERM and SIGINT stop `vessel vm run` cleanly: exit code 128 + the
/// signal's number, the reason on stderr, the API socket removed, and the
/// guest stopped (not left running by a half-dead VMM).
#[test]
fn sigterm_and_sigint_stop_the_vmm_cleanly() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let guest = build_guest("counter", d);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let name = format!("sig{signal}");
        let vmm = Vmm::start(d, &name, &["--kernel", p(&guest), "--memory", "32"], true);
        vmm.wait_lines(3);
        let sock = vmm.sock.clone().expect("socket");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(vmm.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let console = vmm.console.clone();
        let (exit, err) = vmm.wait();
        assert_eq!(exit, code, "SIG{signal}: {err}");
        assert!(err.contains("stopped by signal"), "{err}");
        assert!(!sock.exists(), "SIG{signal} left the API socket");
        // The guest stopped with the VMM: its console no longer grows.
        let len = std::fs::metadata(&console).expect("console").len();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(std::fs::metadata(&console).expect("console").len(), len);
    }
    // Before anything was started, too.
    let vmm = Vmm::start(d, "idle", &[], true);
    let sock = vmm.sock.clone().expect("socket");
    Command::new("kill")
        .args(["-TERM", &vmm.child.id().to_string()])
        .status()
        .expect("kill");
    let (exit, err) = vmm.wait();
    assert_eq!(exit, 143, "{err}");
    assert!(!sock.exists());
}
