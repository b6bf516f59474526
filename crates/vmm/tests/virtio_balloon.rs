//! virtio-balloon end to end, through the VMM's API as a user drives it:
//! the C guest `virtio_balloon.c` inflates by the target `num_pages`, and
//! the pages it gave read back as zero (vessel discarded them with
//! `madvise`); `GET /balloon/statistics` shows the `actual` the guest
//! reported and the statistics it posted, refreshed by polling;
//! `PATCH /balloon` with a smaller target reaches the guest as a
//! configuration interrupt and it deflates. The VMM runs in-process with
//! every seccomp filter on. Fails, never skips, without /dev/kvm.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{build_c_guest, captured, require_kvm, text};
use serde_json::{json, Value};
use vessel_vmm::config::devices::BalloonConfig;
use vessel_vmm::controller::{Controller, ControllerError, ControllerOptions, Start};
use vessel_vmm::logger::Log;
use vessel_vmm::VmExitReason;

/// Only a hung VM ever waits this long.
const PATIENCE: Duration = Duration::from_secs(120);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One request on a fresh connection; status and JSON body.
fn call(sock: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).expect("connect to the API socket");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("response");
    let status = raw
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };
    (status, json)
}

fn fault(v: &Value) -> String {
    v["fault_message"].as_str().unwrap_or_default().to_owned()
}

/// A VMM thread serving the API on `dir/api.sock`, booting the balloon
/// guest with `balloon` (32 MiB of memory).
struct Vmm {
    sock: std::path::PathBuf,
    console: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<Result<VmExitReason, ControllerError>>,
}

impl Vmm {
    fn start(dir: &Path, balloon: BalloonConfig, kvm_eventfds: bool) -> Vmm {
        let kernel = build_c_guest("virtio_balloon", dir);
        let (mut config, console) = captured(&kernel);
        config.devices.balloon = Some(balloon);
        config.devices.kvm_eventfds = kvm_eventfds;
        let sock = dir.join("api.sock");
        let options = ControllerOptions {
            id: "balloon".into(),
            seccomp: true,
            api_socket: Some(sock.clone()),
        };
        let controller = Controller::new(config, true, Log::default(), options);
        let thread = std::thread::spawn(move || controller.run_with(Start::Boot));
        Vmm {
            sock,
            console,
            thread,
        }
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        call(&self.sock, method, path, body)
    }

    /// Waits for the console line that starts like `line` (up to its
    /// first digit), asserts it is `line`; returns the whole console.
    fn wait_line(&self, line: &str) -> String {
        let prefix = &line[..line
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(line.len())];
        let complete = |out: &str| out.find(prefix).is_some_and(|at| out[at..].contains('\n'));
        wait_for(&format!("{prefix:?} on the console"), || {
            complete(&text(&self.console)) || self.thread.is_finished()
        });
        let out = text(&self.console);
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
        out
    }

    /// Waits for statistics that satisfy `ok`; returns them.
    fn wait_stats(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        wait_for(what, || {
            last = self.call("GET", "/balloon/statistics", "").1;
            ok(&last) || self.thread.is_finished()
        });
        assert!(ok(&last), "{what}: {last}");
        last
    }

    fn patch_target(&self, mib: u32) {
        let (status, body) = self.call(
            "PATCH",
            "/balloon",
            &json!({ "amount_mib": mib }).to_string(),
        );
        assert_eq!(status, 204, "{body}");
    }

    fn join(self) -> (VmExitReason, String) {
        let reason = self
            .thread
            .join()
            .expect("the VMM thread")
            .expect("the VM ran");
        (reason, text(&self.console))
    }
}

const INFLATED: &str = "balloon: inflated 256 pages (used len 0), 256 read zero, neighbour kept\n";
const DEFLATED: &str = "balloon: deflated to 0 pages (used len 0), 256 usable again\n";

#[test]
fn the_guest_inflates_reports_statistics_and_deflates_on_a_smaller_target() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let balloon = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: true,
        stats_polling_interval_s: 1,
    };
    let vmm = Vmm::start(dir.path(), balloon, true);
    let out = vmm.wait_line(INFLATED);
    for line in [
        "balloon: features stats deflate_on_oom\n",
        "balloon: target 256\n",
        // PFNs outside memory and an odd length: returned, nothing touched.
        "balloon: hostile list used len 0\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert_eq!(
        vmm.call("GET", "/balloon", ""),
        (
            200,
            json!({"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 1})
        )
    );
    // The guest's `actual`, and a second statistics round: the device gave
    // the buffer back when its 1 s timer fired and the guest refilled it.
    let stats = vmm.wait_stats("actual 256 and a second stats round", |s| {
        s["actual_pages"] == 256 && s["minor_faults"].as_u64() >= Some(2)
    });
    assert_eq!(stats["target_pages"], 256);
    assert_eq!(
        (stats["target_mib"].as_u64(), stats["actual_mib"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats["swap_in"], 11);
    assert_eq!(stats["free_memory"], 20 << 20);
    assert_eq!(stats["total_memory"], 32 << 20);
    // The truncated entry and the unknown tag left nothing behind.
    assert!(stats.get("available_memory").is_none(), "{stats}");
    assert!(stats.get("disk_caches").is_none(), "{stats}");

    // Refusals change nothing.
    let (status, body) = vmm.call("PATCH", "/balloon", r#"{"amount_mib": 33}"#);
    assert_eq!(status, 400);
    assert!(fault(&body).contains("balloon.amount_mib"), "{body}");
    let (status, body) = vmm.call(
        "PATCH",
        "/balloon/statistics",
        r#"{"stats_polling_interval_s": 0}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&body).contains("cannot be turned off"), "{body}");
    let (status, body) = vmm.call(
        "PUT",
        "/balloon",
        r#"{"amount_mib": 2, "deflate_on_oom": false}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&body).contains("after starting"), "{body}");
    let (status, _) = vmm.call(
        "PATCH",
        "/balloon/statistics",
        r#"{"stats_polling_interval_s": 2}"#,
    );
    assert_eq!(status, 204);
    assert_eq!(
        vmm.call("GET", "/balloon", "").1,
        json!({"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 2})
    );

    // A smaller target: the configuration interrupt makes the guest deflate.
    vmm.patch_target(0);
    vmm.wait_line(DEFLATED);
    vmm.wait_stats("actual 0", |s| {
        s["actual_pages"] == 0 && s["target_pages"] == 0
    });
    assert_eq!(vmm.call("GET", "/balloon", "").1["amount_mib"], 0);
    // A larger one ends the guest.
    vmm.patch_target(2);
    let (reason, out) = vmm.join();
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    assert!(out.contains("balloon: asked for 512 pages after"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn without_statistics_and_without_irqfd_the_balloon_still_works() {
    // Statistics off: two queues, GET /balloon/statistics refused. The
    // fallback path: notifications as MMIO exits, and the configuration
    // interrupt raised with KVM_IRQ_LINE from the confined VMM thread.
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let balloon = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: false,
        stats_polling_interval_s: 0,
    };
    let vmm = Vmm::start(dir.path(), balloon, false);
    let out = vmm.wait_line(INFLATED);
    assert!(out.contains("balloon: features\n"), "{out}");
    let (status, body) = vmm.call("GET", "/balloon/statistics", "");
    assert_eq!(status, 400);
    assert!(fault(&body).contains("not enabled"), "{body}");
    let (status, body) = vmm.call(
        "PATCH",
        "/balloon/statistics",
        r#"{"stats_polling_interval_s": 5}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&body).contains("cannot be turned on"), "{body}");
    vmm.patch_target(0);
    vmm.wait_line(DEFLATED);
    vmm.patch_target(1);
    let (reason, out) = vmm.join();
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    assert!(
        out.contains("balloon: asked for 256 pages after 1 stats rounds, bye\n"),
        "{out}"
    );
}
