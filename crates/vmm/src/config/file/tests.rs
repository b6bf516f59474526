use super::*;

/// A config as Firecracker's getting-started guide writes it, for a kernel
/// and initrd boot (with the device sections empty).
const FIRECRACKER: &str = r#"{
  "boot-source": {
    "kernel_image_path": "/srv/vmlinux",
    "initrd_path": "/srv/initrd.cpio",
    "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"
  },
  "drives": [],
  "machine-config": {
    "vcpu_count": 2,
    "mem_size_mib": 256,
    "smt": false,
    "track_dirty_pages": false,
    "huge_pages": "None"
  },
  "cpu-config": null,
  "balloon": null,
  "network-interfaces": [],
  "vsock": null,
  "logger": {"log_path": "/tmp/fc.log", "level": "debug", "show_level": true, "show_log_origin": false},
  "metrics": null,
  "mmds-config": null,
  "entropy": null
}"#;

fn err(json: &str) -> String {
    match parse(json.as_bytes()).and_then(|f| f.to_vm_config()) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn with_machine(m: &str) -> String {
    format!(r#"{{"boot-source": {{"kernel_image_path": "/k"}}, "machine-config": {m}}}"#)
}

#[test]
fn a_firecracker_config_is_accepted() {
    let file = parse(FIRECRACKER.as_bytes()).expect("parses");
    let c = file.to_vm_config().expect("valid");
    assert_eq!(c.kernel, Path::new("/srv/vmlinux"));
    assert_eq!(c.initrd.as_deref(), Some(Path::new("/srv/initrd.cpio")));
    assert_eq!(c.cmdline, "console=ttyS0 reboot=k panic=1 pci=off");
    assert_eq!((c.vcpus, c.memory_mib), (2, 256));
    assert_eq!(file.log_path(), Some(Path::new("/tmp/fc.log")));
    assert_eq!(file.log_level(), Some(LogLevel::Debug));
}

#[test]
fn defaults_are_firecrackers() {
    let file = parse(br#"{"boot-source": {"kernel_image_path": "/k"}}"#).expect("parses");
    let c = file.to_vm_config().expect("valid");
    assert_eq!((c.vcpus, c.memory_mib), (1, 128));
    assert_eq!(c.cmdline, DEFAULT_CMDLINE);
    assert_eq!(c.initrd, None);
    assert_eq!(file.log_path(), None);
}

#[test]
fn malformed_json_is_reported() {
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k""#);
    assert!(e.contains("EOF"), "{e}");
    let e = err("");
    assert!(e.contains("(top level)"), "{e}");
    let e = err("42");
    assert!(
        e.contains("(top level)") && e.contains("expected struct"),
        "{e}"
    );
}

#[test]
fn wrong_types_name_the_field() {
    let e = err(&with_machine(r#"{"vcpu_count": "2", "mem_size_mib": 128}"#));
    assert!(e.contains("`machine-config.vcpu_count`"), "{e}");
    assert!(e.contains("invalid type: string"), "{e}");
    let e = err(&with_machine(r#"{"vcpu_count": 1, "mem_size_mib": -5}"#));
    assert!(e.contains("`machine-config.mem_size_mib`"), "{e}");
    let e = err(&with_machine(
        r#"{"vcpu_count": 1, "mem_size_mib": 128, "smt": "no"}"#,
    ));
    assert!(e.contains("`machine-config.smt`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": 7}}"#);
    assert!(e.contains("`boot-source.kernel_image_path`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k"}, "drives": {}}"#);
    assert!(
        e.contains("`drives`") && e.contains("expected a sequence"),
        "{e}"
    );
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k"}, "logger": {"level": "loud"}}"#);
    assert!(e.contains("`logger.level`") && e.contains("loud"), "{e}");
}

#[test]
fn unknown_fields_are_named() {
    let e = err(&with_machine(
        r#"{"vcpu_count": 1, "mem_size_mib": 128, "vcpus": 4}"#,
    ));
    assert!(e.contains("unknown field `vcpus`"), "{e}");
    assert!(e.contains("`machine-config"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k", "kernel": "/x"}}"#);
    assert!(e.contains("unknown field `kernel`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k"}, "machine_config": {}}"#);
    assert!(e.contains("unknown field `machine_config`"), "{e}");
    let e = err(&with_machine(
        r#"{"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "Z9"}"#,
    ));
    assert!(e.contains("unknown variant `Z9`"), "{e}");
}

#[test]
fn missing_fields_are_named() {
    let e = err("{}");
    assert!(e.contains("missing field `boot-source`"), "{e}");
    let e = err(r#"{"boot-source": {"initrd_path": "/i"}}"#);
    assert!(e.contains("missing field `kernel_image_path`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": ""}}"#);
    assert!(
        e.contains("`boot-source.kernel_image_path`: empty path"),
        "{e}"
    );
    let e = err(&with_machine(r#"{"vcpu_count": 1}"#));
    assert!(e.contains("missing field `mem_size_mib`"), "{e}");
}

#[test]
fn absurd_values_are_refused() {
    for (m, field) in [
        (r#"{"vcpu_count": 0, "mem_size_mib": 128}"#, "vcpu_count"),
        (r#"{"vcpu_count": 255, "mem_size_mib": 128}"#, "vcpu_count"),
        (r#"{"vcpu_count": 1000, "mem_size_mib": 128}"#, "vcpu_count"),
        (r#"{"vcpu_count": 1, "mem_size_mib": 0}"#, "mem_size_mib"),
        (r#"{"vcpu_count": 1, "mem_size_mib": 1}"#, "mem_size_mib"),
        (
            r#"{"vcpu_count": 1, "mem_size_mib": 18446744073709551615}"#,
            "mem_size_mib",
        ),
        (
            r#"{"vcpu_count": 1, "mem_size_mib": 2097152}"#,
            "mem_size_mib",
        ),
    ] {
        let e = err(&with_machine(m));
        assert!(e.contains(&format!("`machine-config.{field}`")), "{m}: {e}");
        assert!(e.contains("asked for"), "{m}: {e}");
    }
    let e = err(&with_machine(r#"{"vcpu_count": 1e9, "mem_size_mib": 128}"#));
    assert!(e.contains("`machine-config.vcpu_count`"), "{e}");
}

#[test]
fn bad_command_lines_are_refused() {
    let long = "a".repeat(CMDLINE_MAX_SIZE);
    let e = err(&format!(
        r#"{{"boot-source": {{"kernel_image_path": "/k", "boot_args": "{long}"}}}}"#
    ));
    assert!(e.contains("`boot-source.boot_args`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k", "boot_args": "a\u0000b"}}"#);
    assert!(e.contains("`boot-source.boot_args`"), "{e}");
    let e = err(r#"{"boot-source": {"kernel_image_path": "/k", "boot_args": "a\nb"}}"#);
    assert!(e.contains("printable ASCII"), "{e}");
}

#[test]
fn balloon_section_is_accepted_and_one_larger_than_memory_refused() {
    let ok = r#"{"boot-source": {"kernel_image_path": "/k"}, "balloon": {"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 1}}"#;
    let config = parse(ok.as_bytes())
        .and_then(|f| f.to_vm_config())
        .expect("valid");
    let balloon = config.devices.balloon.expect("balloon");
    assert_eq!(
        (
            balloon.amount_mib,
            balloon.deflate_on_oom,
            balloon.stats_polling_interval_s
        ),
        (64, true, 1)
    );
    let e = err(
        r#"{"boot-source": {"kernel_image_path": "/k"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}, "balloon": {"amount_mib": 33, "deflate_on_oom": false}}"#,
    );
    assert!(e.contains("balloon.amount_mib"), "{e}");
}

#[test]
fn vsock_section_is_accepted_and_a_reserved_cid_refused() {
    let ok = r#"{"boot-source": {"kernel_image_path": "/k"}, "vsock": {"guest_cid": 3, "uds_path": "/v.sock"}}"#;
    let config = parse(ok.as_bytes()).expect("parses");
    let vsock = config.devices().vsock.expect("vsock");
    assert_eq!(
        (vsock.guest_cid, vsock.uds_path.as_path()),
        (3, std::path::Path::new("/v.sock"))
    );
    let e = err(
        r#"{"boot-source": {"kernel_image_path": "/k"}, "vsock": {"guest_cid": 1, "uds_path": "/v.sock"}}"#,
    );
    assert!(e.contains("vsock.guest_cid"), "{e}");
}

#[test]
fn the_metrics_section_gives_the_metrics_path() {
    let file = parse(
        br#"{"boot-source": {"kernel_image_path": "/k"}, "metrics": {"metrics_path": "/run/m.fifo"}}"#,
    )
    .expect("parses");
    let c = file.to_vm_config().expect("valid");
    assert_eq!(c.metrics_path.as_deref(), Some(Path::new("/run/m.fifo")));
    let none = parse(FIRECRACKER.as_bytes()).expect("parses");
    assert_eq!(none.to_vm_config().expect("valid").metrics_path, None);
    for (metrics, want) in [
        (
            r#"{"metrics_path": ""}"#,
            "`metrics.metrics_path`: empty path",
        ),
        (r#"{"metrics_path": 3}"#, "`metrics.metrics_path`"),
        (r#"{}"#, "missing field `metrics_path`"),
        (
            r#"{"metrics_path": "/m", "interval": 5}"#,
            "unknown field `interval`",
        ),
    ] {
        let e = err(&format!(
            r#"{{"boot-source": {{"kernel_image_path": "/k"}}, "metrics": {metrics}}}"#
        ));
        assert!(e.contains(want), "{metrics}: {e}");
    }
}

#[test]
fn sections_vessel_lacks_must_be_empty() {
    for (section, value) in [
        ("pmem", "[{}]"),
        ("mmds-config", "{}"),
        ("cpu-config", r#""/t.json""#),
        ("memory-hotplug", "{}"),
        ("serial", "{}"),
    ] {
        let json =
            format!(r#"{{"boot-source": {{"kernel_image_path": "/k"}}, "{section}": {value}}}"#);
        let e = err(&json);
        assert!(e.contains(&format!("`{section}`")), "{section}: {e}");
        assert!(e.contains("not supported by vessel yet"), "{section}: {e}");
    }
}

#[test]
fn unsupported_machine_features_are_refused() {
    for (m, field) in [
        (
            r#"{"vcpu_count": 2, "mem_size_mib": 128, "smt": true}"#,
            "smt",
        ),
        (
            r#"{"vcpu_count": 2, "mem_size_mib": 128, "cpu_template": "T2"}"#,
            "cpu_template",
        ),
        (
            r#"{"vcpu_count": 2, "mem_size_mib": 128, "huge_pages": "2M"}"#,
            "huge_pages",
        ),
    ] {
        let e = err(&with_machine(m));
        assert!(e.contains(&format!("`machine-config.{field}`")), "{e}");
        assert!(e.contains("not supported by vessel yet"), "{e}");
    }
    let ok = with_machine(
        r#"{"vcpu_count": 2, "mem_size_mib": 128, "cpu_template": "None", "track_dirty_pages": true}"#,
    );
    parse(ok.as_bytes())
        .expect("parses")
        .to_vm_config()
        .expect("valid");
}

#[test]
fn oversized_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.json");
    std::fs::write(&path, vec![b' '; MAX_CONFIG_BYTES as usize + 1]).expect("write");
    let e = load(&path).expect_err("too large").to_string();
    assert!(e.contains("big.json") && e.contains("larger"), "{e}");
    let e = load(&dir.path().join("missing.json")).expect_err("missing");
    assert!(e.to_string().contains("missing.json"), "{e}");
}

#[test]
fn device_sections_are_read_with_firecracker_names() {
    let json = r#"{"boot-source": {"kernel_image_path": "/k"},
      "drives": [
        {"drive_id": "data", "path_on_host": "/d.img", "is_root_device": false,
         "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 100}}},
        {"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true,
         "is_read_only": true, "cache_type": "Writeback"}],
      "entropy": {"rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": 10, "refill_time": 1000}}}}"#;
    let config = parse(json.as_bytes())
        .expect("parses")
        .to_vm_config()
        .expect("valid");
    let d = &config.devices;
    assert_eq!(d.drives[0].drive_id, "rootfs", "the root drive first");
    assert_eq!(d.root_cmdline().as_deref(), Some("root=/dev/vda ro"));
    assert!(d.drives[0].is_read_only && !d.drives[1].is_read_only);
    assert!(d.entropy.is_some());
}

#[test]
fn bad_device_sections_name_the_field() {
    for (section, value, want) in [
        (
            "drives",
            r#"[{"drive_id": "rootfs"}]"#,
            "missing field `is_root_device`",
        ),
        (
            "drives",
            r#"[{"drive_id": "a b", "path_on_host": "/x", "is_root_device": false}]"#,
            "`drives[0].drive_id`",
        ),
        (
            "drives",
            r#"[{"drive_id": "a", "is_root_device": false}]"#,
            "`drives[0].path_on_host`",
        ),
        (
            "drives",
            r#"[{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "io_engine": "Async"}]"#,
            "`drives[0].io_engine`",
        ),
        (
            "drives",
            r#"[{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "cache_type": "Fast"}]"#,
            "unknown variant `Fast`",
        ),
        (
            "drives",
            r#"[{"drive_id": "a", "path_on_host": "/x", "is_root_device": true}, {"drive_id": "b", "path_on_host": "/y", "is_root_device": true}]"#,
            "more than one root device",
        ),
        (
            "vsock",
            r#"{"guest_cid": 3, "uds_path": "/v.sock", "port": 1}"#,
            "unknown field `port`",
        ),
        (
            "entropy",
            r#"{"rate_limiter": {"ops": {"size": 1}}}"#,
            "missing field `refill_time`",
        ),
    ] {
        let json =
            format!(r#"{{"boot-source": {{"kernel_image_path": "/k"}}, "{section}": {value}}}"#);
        let e = err(&json);
        assert!(e.contains(want), "{section} {value}: {e}");
    }
}
