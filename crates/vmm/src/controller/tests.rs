//! The controller's decisions before boot (no KVM needed): what each
//! request changes, what it refuses and with which message.

use super::*;
use crate::api::http::{Method, Request};
use crate::api::route;

fn controller() -> Controller {
    Controller::new(
        VmConfig::new(""),
        false,
        Log::default(),
        ControllerOptions {
            id: "vm-1".into(),
            seccomp: false,
            api_socket: None,
            async_teardown: false,
        },
    )
}

/// Routes and decides `method path body`; returns status and body.
fn call(c: &mut Controller, method: Method, path: &str, body: &str) -> (u16, Value) {
    let req = Request {
        method,
        path: path.into(),
        body: body.as_bytes().to_vec(),
        keep_alive: true,
    };
    let response = match route(&req) {
        Ok(api) => c.handle(api),
        Err(fault) => Response::fault(400, &fault),
    };
    let body = response
        .body
        .as_deref()
        .map_or(Value::Null, |b| serde_json::from_slice(b).expect("JSON"));
    (response.status, body)
}

fn fault(v: &Value) -> &str {
    v["fault_message"].as_str().expect("fault_message")
}

#[test]
fn instance_info_and_version() {
    let mut c = controller();
    let (status, info) = call(&mut c, Method::Get, "/", "");
    assert_eq!(status, 200);
    assert_eq!(info["id"], "vm-1");
    assert_eq!(info["state"], "Not started");
    assert_eq!(info["app_name"], "vessel");
    assert_eq!(info["vmm_version"], VERSION);
    let (_, v) = call(&mut c, Method::Get, "/version", "");
    assert_eq!(v["firecracker_version"], VERSION);
}

#[test]
fn machine_config_put_patch_get() {
    let mut c = controller();
    let (_, m) = call(&mut c, Method::Get, "/machine-config", "");
    assert_eq!(
        (m["vcpu_count"].as_u64(), m["mem_size_mib"].as_u64()),
        (Some(1), Some(128))
    );
    let (status, _) = call(
        &mut c,
        Method::Put,
        "/machine-config",
        r#"{"vcpu_count": 2, "mem_size_mib": 256, "track_dirty_pages": true}"#,
    );
    assert_eq!(status, 204);
    let (status, _) = call(
        &mut c,
        Method::Patch,
        "/machine-config",
        r#"{"mem_size_mib": 64}"#,
    );
    assert_eq!(status, 204);
    let (_, m) = call(&mut c, Method::Get, "/machine-config", "");
    assert_eq!(m["vcpu_count"], 2);
    assert_eq!(m["mem_size_mib"], 64);
    assert_eq!(m["track_dirty_pages"], true);
    assert_eq!((c.config.vcpus, c.config.memory_mib), (2, 64));
}

#[test]
fn bad_machine_config_changes_nothing_and_names_the_field() {
    let mut c = controller();
    let cases = [
        (
            r#"{"vcpu_count": 0, "mem_size_mib": 128}"#,
            "machine-config.vcpu_count",
        ),
        (r#"{"vcpu_count": 1000, "mem_size_mib": 128}"#, "1000 vCPUs"),
        (
            r#"{"vcpu_count": 1, "mem_size_mib": 0}"#,
            "machine-config.mem_size_mib",
        ),
        (
            r#"{"vcpu_count": 2, "mem_size_mib": 128, "smt": true}"#,
            "machine-config.smt",
        ),
        (
            r#"{"vcpu_count": "2", "mem_size_mib": 128}"#,
            "at `vcpu_count`: invalid type",
        ),
        (
            r#"{"vcpu_count": 2, "mem_size_mib": 128, "x": 1}"#,
            "unknown field `x`",
        ),
    ];
    for (body, want) in cases {
        let (status, v) = call(&mut c, Method::Put, "/machine-config", body);
        assert_eq!(status, 400, "{body}");
        assert!(fault(&v).contains(want), "{body}: {v}");
    }
    let (status, v) = call(
        &mut c,
        Method::Patch,
        "/machine-config",
        r#"{"vcpu_count": -1}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("vcpu_count"), "{v}");
    assert_eq!((c.config.vcpus, c.config.memory_mib), (1, 128));
}

#[test]
fn boot_source_is_checked_when_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("vmlinux");
    std::fs::write(&kernel, b"not really a kernel").expect("write");
    let mut c = controller();
    let missing = format!(
        r#"{{"kernel_image_path": "{}/nope"}}"#,
        dir.path().display()
    );
    let (status, v) = call(&mut c, Method::Put, "/boot-source", &missing);
    assert_eq!(status, 400);
    assert!(fault(&v).contains("boot-source.kernel_image_path"), "{v}");
    assert!(fault(&v).contains("No such file"), "{v}");
    let (status, v) = call(
        &mut c,
        Method::Put,
        "/boot-source",
        &format!(
            r#"{{"kernel_image_path": "{}", "boot_args": "a\u0007b"}}"#,
            kernel.display()
        ),
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("boot-source.boot_args"), "{v}");
    assert!(c.boot_source.is_none());
    let (status, _) = call(
        &mut c,
        Method::Put,
        "/boot-source",
        &format!(
            r#"{{"kernel_image_path": "{}", "boot_args": "console=ttyS0"}}"#,
            kernel.display()
        ),
    );
    assert_eq!(status, 204);
    assert_eq!(c.config.kernel, kernel);
    assert_eq!(c.config.cmdline, "console=ttyS0");
}

#[test]
fn state_rules_before_boot() {
    let mut c = controller();
    let (status, v) = call(
        &mut c,
        Method::Put,
        "/actions",
        r#"{"action_type": "InstanceStart"}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("PUT /boot-source first"), "{v}");
    for body in [r#"{"state": "Paused"}"#, r#"{"state": "Resumed"}"#] {
        let (status, v) = call(&mut c, Method::Patch, "/vm", body);
        assert_eq!(status, 400);
        assert!(fault(&v).contains("before starting"), "{v}");
    }
    let (status, v) = call(
        &mut c,
        Method::Put,
        "/actions",
        r#"{"action_type": "SendCtrlAltDel"}"#,
    );
    assert_eq!(status, 400);
    assert!(fault(&v).contains("before starting"), "{v}");
    let (status, v) = call(
        &mut c,
        Method::Put,
        "/actions",
        r#"{"action_type": "FlushMetrics"}"#,
    );
    // Firecracker's answer, whether or not metrics are configured.
    assert_eq!(status, 400);
    assert!(fault(&v).contains("before starting"), "{v}");
}

#[test]
fn metrics_are_opened_when_put_and_only_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = controller();
    for (body, want) in [
        (
            format!(
                r#"{{"metrics_path": "{}/no/dir/m.json"}}"#,
                dir.path().display()
            ),
            format!("{}/no/dir/m.json", dir.path().display()),
        ),
        (
            format!(r#"{{"metrics_path": "{}"}}"#, dir.path().display()),
            "Is a directory".to_owned(),
        ),
        (
            r#"{"metrics_path": ""}"#.to_owned(),
            "empty path".to_owned(),
        ),
    ] {
        let (status, v) = call(&mut c, Method::Put, "/metrics", &body);
        assert_eq!(status, 400, "{body}");
        assert!(fault(&v).contains("Invalid `metrics_path`"), "{v}");
        assert!(fault(&v).contains(&want), "{v}");
    }
    // Refused requests changed nothing.
    let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
    assert_eq!(config["metrics"], Value::Null);

    let path = dir.path().join("metrics.json");
    let body = format!(r#"{{"metrics_path": "{}"}}"#, path.display());
    assert_eq!(call(&mut c, Method::Put, "/metrics", &body).0, 204);
    assert!(path.exists(), "created when put");
    let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
    assert_eq!(config["metrics"]["metrics_path"], path.to_str().unwrap());
    let other = format!(
        r#"{{"metrics_path": "{}"}}"#,
        dir.path().join("other.json").display()
    );
    let (status, v) = call(&mut c, Method::Put, "/metrics", &other);
    assert_eq!(status, 400);
    assert_eq!(fault(&v), "Reinitialization of metrics not allowed.");
    let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
    assert_eq!(config["metrics"]["metrics_path"], path.to_str().unwrap());
}

#[test]
fn metrics_are_flushed_periodically_and_on_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.json");
    let mut c = controller();
    c.config.metrics_path = Some(path.clone());
    c.metrics_interval = Duration::from_millis(20);
    let tx = c.tx.clone();
    let vmm = std::thread::spawn(move || c.run_with(Start::Wait));
    let lines = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let start = Instant::now();
    while lines() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no periodic flush"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    tx.send(Message::Signal(libc::SIGTERM)).expect("send");
    let reason = vmm.join().expect("VMM thread").expect("clean stop");
    assert_eq!(reason, VmExitReason::Signal(libc::SIGTERM));
    let text = std::fs::read_to_string(&path).expect("metrics");
    let mut last = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        let t = v["utc_timestamp_ms"].as_u64().expect("timestamp");
        assert!(t >= last, "timestamps go forward: {text}");
        last = t;
        assert!(v["vcpu"]["exit_io_out"].is_u64(), "{line}");
        assert!(
            v["api_server"]["process_startup_time_cpu_us"].as_u64() > Some(0),
            "{line}"
        );
    }
}

#[test]
fn a_metrics_file_that_cannot_be_opened_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = controller();
    let path = dir.path().join("missing/metrics.json");
    c.config.metrics_path = Some(path.clone());
    let err = c.run_with(Start::Wait).expect_err("refused");
    assert!(matches!(err, ControllerError::Metrics(_)), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn logger_is_opened_when_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = controller();
    let bad = format!(r#"{{"log_path": "{}/no/dir/log"}}"#, dir.path().display());
    let (status, v) = call(&mut c, Method::Put, "/logger", &bad);
    assert_eq!(status, 400);
    assert!(fault(&v).contains("no/dir/log"), "{v}");
    let log = dir.path().join("vmm.log");
    let good = format!(r#"{{"log_path": "{}", "level": "warning"}}"#, log.display());
    assert_eq!(call(&mut c, Method::Put, "/logger", &good).0, 204);
    // A refused request is logged as a warning.
    call(&mut c, Method::Patch, "/vm", r#"{"state": "Paused"}"#);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("WARN API request refused"), "{text}");
}

#[test]
fn vm_config_round_trips_through_the_config_file_parser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("vmlinux");
    std::fs::write(&kernel, b"k").expect("write");
    let mut c = controller();
    let boot = format!(
        r#"{{"kernel_image_path": "{}", "boot_args": "console=ttyS0 quiet"}}"#,
        kernel.display()
    );
    assert_eq!(call(&mut c, Method::Put, "/boot-source", &boot).0, 204);
    let metrics = dir.path().join("metrics.json");
    let body = format!(r#"{{"metrics_path": "{}"}}"#, metrics.display());
    assert_eq!(call(&mut c, Method::Put, "/metrics", &body).0, 204);
    assert_eq!(
        call(
            &mut c,
            Method::Put,
            "/machine-config",
            r#"{"vcpu_count": 3, "mem_size_mib": 96}"#
        )
        .0,
        204
    );
    let (status, v) = call(&mut c, Method::Get, "/vm/config", "");
    assert_eq!(status, 200);
    assert_eq!(v["boot-source"]["boot_args"], "console=ttyS0 quiet");
    assert_eq!(v["drives"], json!([]));
    let file =
        crate::config::file::parse(v.to_string().as_bytes()).expect("parses as a config file");
    let again = file.to_vm_config().expect("valid");
    assert_eq!(again.kernel, kernel);
    assert_eq!((again.vcpus, again.memory_mib), (3, 96));
    assert_eq!(again.cmdline, "console=ttyS0 quiet");
    assert_eq!(again.metrics_path, Some(metrics));
}
