//! virtio-balloon end to end, through the VMM's API as a user drives it:
//! the C guest `virtio_balloon.c` inflates by the target `num_pages`, and
//! the pages it gave read back as zero (vessel discarded them with
//! `madvise`); `GET /balloon/statistics` shows the `actual` the guest
//! reported and the statistics it posted, refreshed by polling;
//! `PATCH /balloon` with a smaller target reaches the guest as a
//! configuration interrupt and it deflates. The VMM runs in-process with
//! every seccomp filter on. Fails, never skips, without /dev/kvm.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{build_c_guest, captured, require_kvm, text};
use serde_json::{json, Value};
use vessel_vmm::config::devices::BalloonConfig;
use vessel_vmm::controller::{Controller, ControllerError, ControllerOptions, Start};
use vessel_vmm::logger::Log;
use vessel_vmm::snapshot::file;
use vessel_vmm::snapshot::state::MmioDeviceState;
use vessel_vmm::{ConsoleOutput, VmConfig, VmExitReason};

/// A console captured in memory.
type Console = Arc<Mutex<Vec<u8>>>;

/// Only a hung VM ever waits this long.
const PATIENCE: Duration = Duration::from_secs(120);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

use vessel_testkit::api::call_json as call;

fn fault(v: &Value) -> String {
    v["fault_message"].as_str().unwrap_or_default().to_owned()
}

/// A VMM thread serving the API on `dir/api.sock`, booting the balloon
/// guest with `balloon` (32 MiB of memory).
struct Vmm {
    sock: PathBuf,
    console: Console,
    thread: JoinHandle<Result<VmExitReason, ControllerError>>,
}

impl Vmm {
    fn start(dir: &Path, balloon: BalloonConfig, kvm_eventfds: bool) -> Vmm {
        let kernel = build_c_guest("virtio_balloon", dir);
        let (mut config, console) = captured(&kernel);
        config.devices.balloon = Some(balloon);
        config.devices.kvm_eventfds = kvm_eventfds;
        Vmm::spawn(config, console, dir.join("api.sock"), Start::Boot)
    }

    /// A VMM with only an API socket at `dir/NAME.sock`, waiting for
    /// `PUT /snapshot/load`.
    fn waiting(dir: &Path, name: &str) -> Vmm {
        let console = Arc::new(Mutex::new(Vec::new()));
        let mut config = VmConfig::new("");
        config.console = ConsoleOutput::Buffer(console.clone());
        let sock = dir.join(format!("{name}.sock"));
        let vmm = Vmm::spawn(config, console, sock, Start::Wait);
        wait_for("the API socket", || vmm.sock.exists());
        vmm
    }

    fn spawn(config: VmConfig, console: Console, sock: PathBuf, start: Start) -> Vmm {
        let options = ControllerOptions {
            id: "balloon".into(),
            seccomp: true,
            api_socket: Some(sock.clone()),
            async_teardown: false,
        };
        let boot_source = matches!(start, Start::Boot);
        let controller = Controller::new(config, boot_source, Log::default(), options);
        let thread = std::thread::spawn(move || controller.run_with(start));
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

/// The snapshot files in `dir`, as `PUT /snapshot/create` and `load`
/// take them.
fn snapshot_bodies(dir: &Path, state: &str) -> (String, String) {
    let (state, mem) = (dir.join(state), dir.join("vm.mem"));
    let create = json!({
        "snapshot_type": "Full",
        "snapshot_path": dir.join("vm.state"),
        "mem_file_path": mem,
    });
    let load = json!({
        "snapshot_path": state,
        "mem_backend": {"backend_type": "File", "backend_path": mem},
        "resume_vm": true,
    });
    (create.to_string(), load.to_string())
}

#[test]
fn a_snapshot_after_inflation_restores_the_balloon_and_the_guest_goes_on() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let balloon = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: true,
        stats_polling_interval_s: 1,
    };
    let vmm = Vmm::start(d, balloon, true);
    vmm.wait_line(INFLATED);
    let before = vmm.wait_stats("actual 256 and a second stats round", |s| {
        s["actual_pages"] == 256 && s["minor_faults"].as_u64() >= Some(2)
    })["minor_faults"]
        .as_u64();
    // Changed at run time: the snapshot must have the new interval. A new
    // interval polls at once; once the guest's next buffer arrived the
    // device holds it for a minute, so the snapshot has it.
    let patch = r#"{"stats_polling_interval_s": 60}"#;
    assert_eq!(vmm.call("PATCH", "/balloon/statistics", patch).0, 204);
    vmm.wait_stats("the round the new interval asked for", |s| {
        s["minor_faults"].as_u64() > before
    });
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Paused"}"#).0, 204);
    let (create, load) = snapshot_bodies(d, "vm.state");
    let (status, body) = vmm.call("PUT", "/snapshot/create", &create);
    assert_eq!(status, 204, "{body}");
    let config = vmm.call("GET", "/balloon", "").1;
    assert_eq!(
        config,
        json!({"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 60})
    );
    let saved = vmm.call("GET", "/balloon/statistics", "").1;
    let rounds = saved["minor_faults"].as_u64().expect("minor_faults");
    // The first VM ends: resumed, a larger target says goodbye.
    assert_eq!(vmm.call("PATCH", "/vm", r#"{"state": "Resumed"}"#).0, 204);
    vmm.patch_target(2);
    let (reason, out) = vmm.join();
    assert_eq!(reason, VmExitReason::Reset, "{out}");

    // The state file holds the balloon as it was, the stats buffer the
    // device kept among it.
    let good = std::fs::read(d.join("vm.state")).expect("state file");
    let state = file::decode(&good).expect("decode");
    let [saved_device] = &state.devices.mmio[..] else {
        panic!("one device expected: {:?}", state.devices.mmio);
    };
    let MmioDeviceState::Balloon(b) = &saved_device.device else {
        panic!("not a balloon: {:?}", saved_device.device);
    };
    assert_eq!((b.target_pages, b.actual_pages), (256, 256));
    assert_eq!(b.stats_polling_interval_s, 60);
    assert!(b.stats_desc_index.is_some(), "{b:?}");

    // A corrupt balloon state (checksum made valid) is refused by name.
    let mut bad = file::decode(&good).expect("decode");
    if let MmioDeviceState::Balloon(b) = &mut bad.devices.mmio[0].device {
        b.stats_desc_index = None;
    }
    std::fs::write(d.join("bad.state"), file::encode(&bad).expect("encode")).expect("write");
    let vmm = Vmm::waiting(d, "second");
    let (_, bad_load) = snapshot_bodies(d, "bad.state");
    let (status, body) = vmm.call("PUT", "/snapshot/load", &bad_load);
    assert_eq!(status, 400, "{body}");
    let msg = fault(&body);
    assert!(
        msg.contains("balloon") && msg.contains("`stats_desc_index`"),
        "{msg}"
    );

    // The same VMM restores the good one: the balloon is as it was.
    let (status, body) = vmm.call("PUT", "/snapshot/load", &load);
    assert_eq!(status, 204, "{body}");
    assert_eq!(vmm.call("GET", "/balloon", ""), (200, config));
    let stats = vmm.call("GET", "/balloon/statistics", "").1;
    for key in ["target_pages", "actual_pages", "target_mib", "actual_mib"] {
        assert_eq!(stats[key], saved[key], "{key}: {stats} vs {saved}");
    }
    // The statistics came with the snapshot (or are newer).
    assert!(stats["minor_faults"].as_u64() >= Some(rounds), "{stats}");
    assert_eq!(stats["total_memory"], 32 << 20);
    // The guest goes on: the buffer the device held is given back at its
    // next poll (a new interval polls at once) and the guest posts a new
    // round; it deflates on a smaller target and ends on a larger one.
    let patch = r#"{"stats_polling_interval_s": 1}"#;
    assert_eq!(vmm.call("PATCH", "/balloon/statistics", patch).0, 204);
    vmm.wait_stats("a stats round after the restore", |s| {
        s["minor_faults"].as_u64() > Some(rounds)
    });
    vmm.patch_target(0);
    vmm.wait_line(DEFLATED);
    vmm.wait_stats("actual 0", |s| s["actual_pages"] == 0);
    vmm.patch_target(2);
    let (reason, out) = vmm.join();
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    assert!(
        out.starts_with(DEFLATED),
        "the restored guest printed {out:?}"
    );
    assert!(out.contains("balloon: asked for 512 pages after"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}
