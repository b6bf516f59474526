//! `vessel vm run` hands KVM's destruction of the finished VM to a helper
//! task that ends after the VMM (crates/vmm/src/teardown.rs, docs/vmm.md
//! "Asynchronous teardown"). What a user relies on, checked here: the
//! command returns with the guest's output complete and its exit code; the
//! helper holds nothing a next run needs (the same tap is free at once);
//! the helper ends on its own; and `--no-async-teardown` leaves nothing
//! behind. This test binary makes itself a child subreaper so that the
//! helper is reparented to it and can be waited for; it has one test only,
//! as waiting for "any child" would steal other tests' children.
//! Fails, never skips, without root or /dev/kvm.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use vessel_testkit::guests::{build_guest, require_kvm};
use vessel_testkit::require_root;

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");
const TAP: &str = "vtdtap0";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

fn vm_run(config: &Path, extra: &[&str]) -> Output {
    let out = Command::new(VESSEL)
        .args(["vm", "run", "--config-file"])
        .arg(config)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("vessel guest ok"),
        "stdout: {}",
        text(&out.stdout)
    );
    out
}

/// Reaps every child left to this process (the VMMs have been waited for
/// by `Command::output`): how many, each of which must have exited 0.
fn reap_left_behind() -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reaped = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) => {
                assert!(
                    Instant::now() < deadline,
                    "a teardown helper is still running after 60 s"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::Exited(_, 0)) => reaped += 1,
            Ok(other) => panic!("a process left by the VMM ended badly: {other:?}"),
            Err(Errno::ECHILD) => return reaped,
            Err(e) => panic!("waitpid: {e}"),
        }
    }
}

#[test]
fn the_vm_is_released_by_a_helper_that_holds_nothing_a_next_run_needs() {
    require_root("a tap in a private network namespace");
    require_kvm();
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    // The tap lives in a namespace of this thread's own; the VMMs this
    // thread spawns open it there.
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    ip(&["link", "set", "lo", "up"]);
    ip(&["tuntap", "add", "dev", TAP, "mode", "tap"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let config = dir.path().join("vm.json");
    let json = format!(
        r#"{{
  "boot-source": {{"kernel_image_path": "{}"}},
  "machine-config": {{"vcpu_count": 1, "mem_size_mib": 32}},
  "network-interfaces": [{{"iface_id": "eth0", "host_dev_name": "{TAP}", "guest_mac": "06:00:ac:10:00:02"}}]
}}"#,
        kernel.display()
    );
    std::fs::write(&config, json).expect("write config");

    // Back to back: the second VMM opens the tap while the first one's
    // helper may still be destroying its VM. A tap still attached to a
    // process is refused as busy, so this passes only if the helper closed
    // its copy before the first `vessel` exited.
    vm_run(&config, &[]);
    vm_run(&config, &[]);
    assert_eq!(
        reap_left_behind(),
        2,
        "each run leaves one teardown helper, which ends on its own"
    );

    // Without the helper the VMM destroys the VM itself: nothing is left.
    vm_run(&config, &["--no-async-teardown"]);
    assert_eq!(reap_left_behind(), 0, "--no-async-teardown left a process");
}
