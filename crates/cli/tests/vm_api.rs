//! `vessel vm run --api-sock`: Firecracker's REST API over a Unix socket,
//! driven with a plain HTTP client, against the purpose-built guests of
//! crates/vmm/tests/guests (assembled here at test time) under KVM; and
//! the per-thread seccomp filters, checked in /proc while a guest runs.
//! These tests fail, never skip, without /dev/kvm.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vessel_testkit::guests::{build_guest, require_kvm};

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");
/// How long to wait for something that takes milliseconds; only a hung
/// VMM ever reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits for `what` to hold; panics with `msg` after [`PATIENCE`].
fn wait_for(msg: &str, mut what: impl FnMut() -> bool) {
    let start = Instant::now();
    while !what() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {msg}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `vessel vm run` child with its API socket and console file.
struct Vmm {
    child: Child,
    sock: PathBuf,
    console: PathBuf,
}

impl Vmm {
    fn start(dir: &Path, extra: &[&str]) -> Vmm {
        let sock = dir.join("api.sock");
        let console = dir.join("console.log");
        let child = Command::new(VESSEL)
            .args(["vm", "run", "--memory", "32", "--api-sock"])
            .arg(&sock)
            .arg(format!("--console=file:{}", console.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vessel");
        let vmm = Vmm {
            child,
            sock,
            console,
        };
        wait_for("the API socket", || vmm.sock.exists());
        vmm
    }

    /// One request on a fresh connection; returns status and JSON body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        vessel_testkit::api::call_json(&self.sock, method, path, body)
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    fn wait_console(&self, needle: &str) {
        wait_for(&format!("{needle:?} on the console"), || {
            self.console().contains(needle)
        });
    }

    /// Each thread's name and its `Seccomp:` mode, from /proc.
    fn threads(&self) -> Vec<(String, u32)> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut out = Vec::new();
        for entry in std::fs::read_dir(tasks).expect("task dir") {
            let status = std::fs::read_to_string(entry.expect("task").path().join("status"))
                .expect("status");
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .expect("status field")
            };
            out.push((field("Name:"), field("Seccomp:").parse().expect("mode")));
        }
        out.sort();
        out
    }

    fn wait(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code().unwrap_or(-1), err);
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("vessel did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn fault(v: &serde_json::Value) -> String {
    v["fault_message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_vm_configured_started_paused_resumed_and_rebooted_over_the_api() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("kbd_wait", dir.path());
    let vmm = Vmm::start(dir.path(), &["--id", "api-test"]);

    let (status, info) = vmm.call("GET", "/", "");
    assert_eq!(status, 200);
    assert_eq!(info["id"], "api-test");
    assert_eq!(info["state"], "Not started");
    assert_eq!(info["app_name"], "vessel");

    // Bad requests: 400 naming the field, and the API keeps serving.
    let (status, v) = vmm.call(
        "PUT",
        "/machine-config",
        r#"{"vcpu_count": 2, "mem_size_mib": 32, "turbo": true}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("unknown field `turbo`"), "{v}");
    let (status, v) = vmm.call(
        "PUT",
        "/machine-config",
        r#"{"vcpu_count": "two", "mem_size_mib": 32}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("vcpu_count"), "{v}");
    let (status, v) = vmm.call("GET", "/no/such/thing", "");
    assert_eq!(status, 400);
    assert!(fault(&v).contains("GET /no/such/thing"), "{v}");
    let (status, v) = vmm.call("PUT", "/actions", r#"{"action_type": "InstanceStart"}"#);
    assert_eq!(status, 400, "start without a kernel: {v}");

    let boot = format!(
        r#"{{"kernel_image_path": "{}", "boot_args": "console=ttyS0"}}"#,
        guest.display()
    );
    assert_eq!(vmm.call("PUT", "/boot-source", &boot).0, 204);
    assert_eq!(
        vmm.call(
            "PUT",
            "/machine-config",
            r#"{"vcpu_count": 2, "mem_size_mib": 32}"#
        )
        .0,
        204
    );
    let log = dir.path().join("vmm.log");
    let logger = format!(r#"{{"log_path": "{}", "level": "Info"}}"#, log.display());
    assert_eq!(vmm.call("PUT", "/logger", &logger).0, 204);
    let (_, config) = vmm.call("GET", "/vm/config", "");
    assert_eq!(config["machine-config"]["vcpu_count"], 2);
    assert_eq!(
        config["boot-source"]["kernel_image_path"],
        guest.to_str().unwrap()
    );

    assert_eq!(
        vmm.call("PUT", "/actions", r#"{"action_type": "InstanceStart"}"#)
            .0,
        204
    );
    vmm.wait_console("kbd guest ready");
    assert_eq!(vmm.call("GET", "/", "").1["state"], "Running");

    // Pre-boot requests after start, and a second start.
    for (method, path, body) in [
        ("PUT", "/actions", r#"{"action_type": "InstanceStart"}"#),
        (
            "PUT",
            "/machine-config",
            r#"{"vcpu_count": 1, "mem_size_mib": 32}"#,
        ),
        ("PATCH", "/machine-config", r#"{"vcpu_count": 1}"#),
        ("PUT", "/boot-source", boot.as_str()),
    ] {
        let (status, v) = vmm.call(method, path, body);
        assert_eq!(status, 400, "{method} {path}");
        assert!(fault(&v).contains("after starting the microVM"), "{v}");
    }

    // Every VMM thread runs under its seccomp filter (mode 2).
    let threads = vmm.threads();
    let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["vessel", "vessel-api", "vessel-vcpu0", "vessel-vcpu1"] {
        assert!(names.contains(&want), "{threads:?}");
    }
    assert!(threads.iter().all(|(_, mode)| *mode == 2), "{threads:?}");

    // Paused: the guest's output stops; resumed: it goes on.
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Paused"}"#).0, 204);
    assert_eq!(vmm.call("GET", "/", "").1["state"], "Paused");
    let frozen = vmm.console().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(vmm.console().len(), frozen, "a paused guest printed");
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Resumed"}"#).0, 204);
    assert_eq!(vmm.call("GET", "/", "").1["state"], "Running");
    wait_for("output after resume", || vmm.console().len() > frozen);

    let (status, v) = vmm.call("PUT", "/actions", r#"{"action_type": "FlushMetrics"}"#);
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        vmm.call("PUT", "/actions", r#"{"action_type": "SendCtrlAltDel"}"#)
            .0,
        204
    );
    let console_path = vmm.console.clone();
    let sock = vmm.sock.clone();
    let (code, stderr) = vmm.wait();
    assert_eq!(code, 0, "{stderr}");
    let console = std::fs::read_to_string(console_path).expect("console");
    for key in ["key 14", "key 11", "key e0", "key 71"] {
        assert!(console.contains(key), "{key} missing: {console}");
    }
    assert!(!sock.exists(), "the API socket is removed on exit");
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(log.contains("2 vCPU(s), 32 MiB"), "{log}");
    assert!(log.contains("guest ended: reset"), "{log}");
}

#[test]
fn a_kernel_on_the_command_line_boots_at_once_and_no_seccomp_turns_filters_off() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("kbd_wait", dir.path());
    let vmm = Vmm::start(
        dir.path(),
        &["--kernel", guest.to_str().unwrap(), "--no-seccomp"],
    );
    vmm.wait_console("kbd guest ready");
    assert_eq!(vmm.call("GET", "/", "").1["state"], "Running");
    let (_, config) = vmm.call("GET", "/vm/config", "");
    assert_eq!(config["machine-config"]["mem_size_mib"], 32);
    let threads = vmm.threads();
    assert!(threads.iter().all(|(_, mode)| *mode == 0), "{threads:?}");
    // Pausing twice and resuming twice is harmless.
    for state in ["Paused", "Paused", "Resumed", "Resumed"] {
        let body = format!(r#"{{"state": "{state}"}}"#);
        assert_eq!(vmm.call("PATCH", "/vm", &body).0, 204, "{state}");
    }
    assert_eq!(
        vmm.call("PUT", "/actions", r#"{"action_type": "SendCtrlAltDel"}"#)
            .0,
        204
    );
    let (code, stderr) = vmm.wait();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_existing_socket_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("api.sock");
    std::fs::write(&sock, b"").expect("file");
    let out = Command::new(VESSEL)
        .args(["vm", "run", "--api-sock"])
        .arg(&sock)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.sock"), "{err}");
}

/// The metrics file's lines, each parsed.
fn metrics_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("metrics file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// `group.field` summed over `lines`: counts are deltas, so the sum is
/// everything counted up to the last flush.
fn total(lines: &[serde_json::Value], group: &str, field: &str) -> u64 {
    lines
        .iter()
        .map(|l| {
            l[group][field]
                .as_u64()
                .unwrap_or_else(|| panic!("{group}.{field} missing: {l}"))
        })
        .sum()
}

#[test]
fn metrics_over_the_api_count_what_the_guest_did() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("kbd_wait", dir.path());
    let vmm = Vmm::start(dir.path(), &[]);
    let flush = r#"{"action_type": "FlushMetrics"}"#;

    // Wrong order and bad paths: 400 naming the thing, nothing changes.
    let (status, v) = vmm.call("PUT", "/actions", flush);
    assert_eq!(status, 400);
    assert!(fault(&v).contains("before starting the microVM"), "{v}");
    let missing = dir.path().join("no/such/dir/metrics.json");
    let body = format!(r#"{{"metrics_path": "{}"}}"#, missing.display());
    let (status, v) = vmm.call("PUT", "/metrics", &body);
    assert_eq!(status, 400);
    assert!(fault(&v).contains(missing.to_str().unwrap()), "{v}");
    let (status, v) = vmm.call("PUT", "/metrics", r#"{"metrics_path": "/m", "every": 1}"#);
    assert_eq!(status, 400);
    assert!(fault(&v).contains("unknown field `every`"), "{v}");
    assert_eq!(
        vmm.call("GET", "/vm/config", "").1["metrics"],
        serde_json::Value::Null
    );

    let metrics = dir.path().join("metrics.json");
    let body = format!(r#"{{"metrics_path": "{}"}}"#, metrics.display());
    assert_eq!(vmm.call("PUT", "/metrics", &body).0, 204);
    let (status, v) = vmm.call("PUT", "/metrics", &body);
    assert_eq!(status, 400);
    assert!(fault(&v).contains("Reinitialization"), "{v}");

    let boot = format!(
        r#"{{"kernel_image_path": "{}", "boot_args": "console=ttyS0"}}"#,
        guest.display()
    );
    assert_eq!(vmm.call("PUT", "/boot-source", &boot).0, 204);
    let start = r#"{"action_type": "InstanceStart"}"#;
    assert_eq!(vmm.call("PUT", "/actions", start).0, 204);
    vmm.wait_console("kbd guest ready");
    wait_for("a few dots", || vmm.console().matches('.').count() >= 3);
    let (status, v) = vmm.call("PUT", "/metrics", &body);
    assert_eq!(status, 400, "after boot: {v}");

    // Paused, the guest does nothing more: the flush can be compared with
    // the console byte for byte.
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Paused"}"#).0, 204);
    assert_eq!(vmm.call("PUT", "/actions", flush).0, 204);
    let console = vmm.console();
    let lines = metrics_lines(&metrics);
    let printed = console.len() as u64;
    assert!(printed > 0);
    assert_eq!(total(&lines, "uart", "write_count"), printed, "{console:?}");
    assert_eq!(total(&lines, "uart", "missed_write_count"), 0);
    // Every byte is one `out` to COM1; the guest reads port 0x64 256
    // times per dot.
    assert_eq!(total(&lines, "vcpu", "exit_io_out"), printed);
    let dots = console.matches('.').count() as u64;
    let polls = total(&lines, "vcpu", "exit_io_in");
    assert!(
        (256 * dots..=256 * (dots + 1)).contains(&polls),
        "{polls} port reads for {dots} dots"
    );
    assert_eq!(total(&lines, "vcpu", "exit_mmio_read"), 0);
    assert_eq!(total(&lines, "vcpu", "failures"), 0);
    // The API's own counts: PUT /metrics 4 times, 3 refused (the body with
    // an unknown field never reached the VMM: it did not parse); 2
    // actions and a flush refused before boot; 1 boot source.
    assert_eq!(total(&lines, "put_api_requests", "metrics_count"), 4);
    assert_eq!(total(&lines, "put_api_requests", "metrics_fails"), 3);
    assert_eq!(total(&lines, "put_api_requests", "actions_count"), 3);
    assert_eq!(total(&lines, "put_api_requests", "actions_fails"), 1);
    assert_eq!(total(&lines, "put_api_requests", "boot_source_count"), 1);
    let last = lines.last().expect("a line");
    assert!(
        last["utc_timestamp_ms"].as_u64() > Some(1_600_000_000_000),
        "{last}"
    );
    assert!(
        last["api_server"]["process_startup_time_us"].as_u64() > Some(0),
        "{last}"
    );
    assert!(
        last["api_server"]["process_startup_time_cpu_us"].as_u64() > Some(0),
        "{last}"
    );

    // Counts are deltas: a second flush with the guest still paused has
    // nothing new from it, only its own request.
    assert_eq!(vmm.call("PUT", "/actions", flush).0, 204);
    let again = metrics_lines(&metrics);
    assert_eq!(again.len(), lines.len() + 1);
    let newest = again.last().expect("a line");
    for (group, field, want) in [
        ("uart", "write_count", 0),
        ("vcpu", "exit_io_out", 0),
        ("vcpu", "exit_io_in", 0),
        ("put_api_requests", "actions_count", 1),
        ("put_api_requests", "boot_source_count", 0),
    ] {
        assert_eq!(newest[group][field], want, "{group}.{field}: {newest}");
    }
    assert_eq!(
        newest["api_server"], last["api_server"],
        "values are kept, not reset"
    );
    assert_eq!(
        vmm.call("GET", "/vm/config", "").1["metrics"]["metrics_path"],
        metrics.to_str().unwrap()
    );

    // Resumed and rebooted: the line written at exit completes the counts.
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Resumed"}"#).0, 204);
    let cad = r#"{"action_type": "SendCtrlAltDel"}"#;
    assert_eq!(vmm.call("PUT", "/actions", cad).0, 204);
    let console_path = vmm.console.clone();
    let (code, stderr) = vmm.wait();
    assert_eq!(code, 0, "{stderr}");
    let console = std::fs::read_to_string(console_path).expect("console");
    let all = metrics_lines(&metrics);
    assert_eq!(all.len(), again.len() + 1, "one more line at exit");
    assert_eq!(total(&all, "uart", "write_count"), console.len() as u64);
    // ... plus the `out` to the i8042 that reset the machine.
    assert_eq!(total(&all, "vcpu", "exit_io_out"), console.len() as u64 + 1);
}

#[test]
fn metrics_from_the_config_file_go_to_a_named_pipe() {
    use std::os::unix::fs::OpenOptionsExt;
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("pvh_hello", dir.path());
    let fifo = dir.path().join("metrics.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // The reader is there before vessel starts and keeps what it wrote
    // after it exits.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    let config = dir.path().join("vm.json");
    let console = dir.path().join("console.log");
    std::fs::write(
        &config,
        format!(
            r#"{{"boot-source": {{"kernel_image_path": "{}", "boot_args": "console=ttyS0"}},
                "machine-config": {{"vcpu_count": 1, "mem_size_mib": 32}},
                "metrics": {{"metrics_path": "{}"}}}}"#,
            guest.display(),
            fifo.display()
        ),
    )
    .expect("config");
    let out = Command::new(VESSEL)
        .args(["vm", "run", "--config-file"])
        .arg(&config)
        .arg(format!("--console=file:{}", console.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run vessel");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::new();
    reader.read_to_string(&mut text).expect("read the FIFO");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 1, "the line written at exit: {text}");
    let console = std::fs::read_to_string(&console).expect("console");
    assert_eq!(console, "vessel guest ok\n");
    // pvh_hello: one read of an unclaimed port, one MMIO read and one MMIO
    // write in the hole, its line on COM1, then the i8042 reset.
    let m = &lines[0];
    assert_eq!(m["uart"]["write_count"], console.len() as u64, "{m}");
    assert_eq!(m["vcpu"]["exit_io_out"], console.len() as u64 + 1, "{m}");
    assert_eq!(m["vcpu"]["exit_io_in"], 1, "{m}");
    assert_eq!(m["vcpu"]["exit_mmio_read"], 1, "{m}");
    assert_eq!(m["vcpu"]["exit_mmio_write"], 1, "{m}");
    assert_eq!(m["vcpu"]["failures"], 0, "{m}");

    // --metrics-path on the command line, Firecracker's flag, does the same.
    let file = dir.path().join("metrics.json");
    let out = Command::new(VESSEL)
        .args(["vm", "run", "--console=none", "--memory", "32", "--kernel"])
        .arg(&guest)
        .arg("--metrics-path")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = metrics_lines(&file);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["vcpu"]["exit_mmio_write"], 1, "{}", lines[0]);

    // A metrics path that cannot be opened stops vessel before the guest
    // runs, naming the path.
    let missing = dir.path().join("gone/metrics.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"boot-source": {{"kernel_image_path": "{}"}}, "metrics": {{"metrics_path": "{}"}}}}"#,
            guest.display(),
            missing.display()
        ),
    )
    .expect("config");
    let out = Command::new(VESSEL)
        .args(["vm", "run", "--console=none", "--config-file"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}
