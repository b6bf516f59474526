//! `vessel vm run` execs `vessel-vmm`, the VMM's own small binary, from
//! vessel's directory: the running VMM is that binary (same pid), it takes
//! the arguments that followed `vm run` (vessel's global flags included),
//! and a missing or unusable `vessel-vmm` is an error naming its path.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");
const VESSEL_VMM: &str = env!("CARGO_BIN_EXE_vessel-vmm");

fn require_kvm() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: `vessel vm` tests need KVM (load kvm_intel/kvm_amd, or run on a host with virtualization)"
    );
}

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory holding a link to the `vessel` binary (next to which no
/// `vessel-vmm` is installed unless the test puts one there).
fn vessel_alone() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let vessel = dir.path().join("vessel");
    std::fs::hard_link(VESSEL, &vessel)
        .or_else(|_| std::fs::copy(VESSEL, &vessel).map(drop))
        .expect("link vessel into the test directory");
    (dir, vessel)
}

#[test]
fn the_running_vmm_is_vessel_vmm_with_the_arguments_after_vm_run() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("api.sock");
    let sock_arg = sock.to_str().expect("utf-8 path");
    // No kernel: the VMM waits on its API socket for one.
    let child = Command::new(VESSEL)
        .args(["--root", "/nonexistent-root", "vm", "run", "--api-sock"])
        .args([sock_arg, "--console", "none"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vessel");
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no API socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let proc = PathBuf::from(format!("/proc/{}", child.id()));
    let exe = std::fs::read_link(proc.join("exe")).expect("/proc/PID/exe");
    assert_eq!(
        exe,
        Path::new(VESSEL_VMM).canonicalize().expect("vessel-vmm")
    );
    let cmdline = std::fs::read(proc.join("cmdline")).expect("/proc/PID/cmdline");
    let argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(text)
        .collect();
    assert_eq!(argv[1..], ["--api-sock", sock_arg, "--console", "none"]);
    // Named as before, when the VMM ran inside `vessel`.
    let comm = std::fs::read_to_string(proc.join("comm")).expect("/proc/PID/comm");
    assert_eq!(comm, "vessel\n");
    // The big binary is gone from the process: only vessel-vmm is mapped.
    let maps = std::fs::read_to_string(proc.join("maps")).expect("/proc/PID/maps");
    let vessel = Path::new(VESSEL).canonicalize().expect("vessel");
    assert!(!maps.contains(&format!("{} ", vessel.display())), "{maps}");
    assert!(!maps.contains(&format!("{}\n", vessel.display())), "{maps}");

    // Signals reach the VMM itself (same pid): SIGTERM stops it as before.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("stopped by signal 15"));
    assert!(!sock.exists(), "the API socket was left behind");
}

#[test]
fn global_flags_around_vm_run_reach_the_vmm_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("no-such-config.json");
    let config = config.to_str().expect("utf-8 path");
    // vessel's global flags before `vm`, between `vm` and `run` and after
    // `run`: vessel-vmm parses what follows `run` as vessel did, so the run
    // gets as far as the config file (exit 1, naming it), not a usage error.
    let out = run(
        Path::new(VESSEL),
        &[
            "--root",
            "vm",
            "vm",
            "--runroot=/run/x",
            "run",
            "--root",
            "/r",
            "--config-file",
            config,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with("vessel: Invalid --config-file"), "{err}");
    assert!(err.contains(config), "{err}");

    // Help and usage errors are still vessel's own.
    let out = run(Path::new(VESSEL), &["vm", "run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Usage: vessel vm run"));
    let out = run(Path::new(VESSEL), &["vm", "run", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage: vessel vm run"));
}

#[test]
fn a_missing_vessel_vmm_is_named() {
    let (dir, vessel) = vessel_alone();
    let vmm = dir.path().join("vessel-vmm");
    let out = run(&vessel, &["vm", "run", "--kernel", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{} is missing", vmm.display())),
        "{err}"
    );

    // Present but not executable: the path and the reason.
    std::fs::write(&vmm, "not a program").expect("write");
    let out = run(&vessel, &["vm", "run", "--kernel", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("Cannot run the VMM binary {}", vmm.display())),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
}
