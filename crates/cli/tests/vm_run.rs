//! `vessel vm run` end to end: the binary boots the purpose-built guests of
//! crates/vmm/tests/guests (assembled and linked here at test time) under
//! KVM. These tests fail, never skip, without /dev/kvm.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use vessel_testkit::guests::{build_guest, require_kvm};

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");

fn vessel(args: &[&str]) -> Output {
    Command::new(VESSEL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn pvh_guest_prints_on_stdout_and_exits_zero() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let out = vessel(&[
        "vm",
        "run",
        "--kernel",
        path(&kernel),
        "--console",
        "stdio",
        "--memory",
        "32",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("vessel guest ok"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn firecracker_config_file_boots_the_guest() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let log = dir.path().join("vmm.log");
    let config = dir.path().join("vm.json");
    let json = format!(
        r#"{{
  "boot-source": {{"kernel_image_path": "{}", "boot_args": "console=ttyS0 reboot=k panic=1"}},
  "drives": [],
  "machine-config": {{"vcpu_count": 2, "mem_size_mib": 32, "smt": false, "track_dirty_pages": false}},
  "network-interfaces": [],
  "logger": {{"log_path": "{}", "level": "Info", "show_level": true, "show_log_origin": false}}
}}"#,
        path(&kernel),
        path(&log)
    );
    std::fs::write(&config, json).expect("write config");
    let out = vessel(&["vm", "run", "--config-file", path(&config)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("vessel guest ok"));
    let log = std::fs::read_to_string(&log).expect("log written");
    assert!(log.contains("2 vCPU(s), 32 MiB"), "{log}");
    assert!(log.contains("guest ended: reset"), "{log}");

    // Flags override the file: the 64-bit guest instead, console to a file.
    let linux64 = build_guest("linux64_hello", dir.path());
    let console = dir.path().join("console.txt");
    let out = vessel(&[
        "vm",
        "run",
        "--config-file",
        path(&config),
        "--kernel",
        path(&linux64),
        "--cpus",
        "1",
        "--console",
        &format!("file:{}", path(&console)),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read_to_string(&console).expect("console file"),
        "vessel guest 64 ok\n"
    );
}

#[test]
fn triple_fault_exits_non_zero_with_the_reason() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("triple_fault", dir.path());
    let out = vessel(&["vm", "run", "--kernel", path(&kernel), "--memory", "16"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("about to triple fault"));
    let err = text(&out.stderr);
    assert!(err.contains("triple fault"), "{err}");
}

#[test]
fn bad_input_gets_clear_errors() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-vmlinux");
    let out = vessel(&["vm", "run", "--kernel", path(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(path(&missing)), "{err}");
    assert!(err.contains("No such file"), "{err}");

    // Out-of-range flags are usage errors naming the flag.
    let kernel = build_guest("pvh_hello", dir.path());
    for (flag, value) in [("--cpus", "0"), ("--cpus", "1000"), ("--memory", "0")] {
        let out = vessel(&["vm", "run", "--kernel", path(&kernel), flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(text(&out.stderr).contains(flag), "{}", text(&out.stderr));
    }
    let out = vessel(&["vm", "run", "--kernel", path(&kernel), "--console", "tty"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("stdio, file:PATH or none"));
    let out = vessel(&["vm", "run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--kernel"));

    // A config file with an absurd value: the error names the file and field.
    let config = dir.path().join("bad.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"boot-source": {{"kernel_image_path": "{}"}}, "machine-config": {{"vcpu_count": 1000, "mem_size_mib": 32}}}}"#,
            path(&kernel)
        ),
    )
    .expect("write");
    let out = vessel(&["vm", "run", "--config-file", path(&config)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");
    assert!(err.contains("machine-config.vcpu_count"), "{err}");
    // A device section vessel does not have yet.
    std::fs::write(
        &config,
        format!(
            r#"{{"boot-source": {{"kernel_image_path": "{}"}}, "pmem": [{{"id": "p"}}]}}"#,
            path(&kernel)
        ),
    )
    .expect("write");
    let out = vessel(&["vm", "run", "--config-file", path(&config)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`pmem`: pmem devices are not supported"));
}
