//! The v2 device filter on the host's real cgroup2 tree: `/sys/fs/cgroup` on a pure v2 host,
//! `/sys/fs/cgroup/unified` on a hybrid one like vessel's build machines. On a hybrid host
//! the kernel runs both the v1 devices check and the eBPF programs of the cgroup2 tree, so
//! the filter is enforced there too.
//!
//! A probe process (`sh`) is moved into the cgroup, then opens a few memory devices and
//! reports through its exit code which opens failed. This needs root and fails without it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use vessel_cgroups::{detect_mode, CgroupManager, CgroupMode, CgroupPath, LinuxResources, Manager};

/// Bits of the probe's exit code: which opens failed.
const READ_NULL: i32 = 1;
const WRITE_NULL: i32 = 2;
const READ_ZERO: i32 = 4;
const WRITE_ZERO: i32 = 8;
const READ_FULL: i32 = 16;

/// Waits for a line on stdin (sent once it is in the cgroup), then tries each open.
const PROBE: &str = r#"
read go
r=0
( : </dev/null ) || r=$((r | 1))
( : >/dev/null ) || r=$((r | 2))
( : </dev/zero ) || r=$((r | 4))
( : >/dev/zero ) || r=$((r | 8))
( : </dev/full ) || r=$((r | 16))
exit $r
"#;

/// The cgroup2 tree of this host.
fn cgroup2_root() -> PathBuf {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if detect_mode(Path::new(root)).ok() == Some(CgroupMode::V2) {
            return PathBuf::from(root);
        }
    }
    panic!("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
}

/// Removes the cgroup even when an assertion fails midway.
struct Cleanup<'a>(&'a Manager);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

/// Runs the probe, in the cgroup when `manager` is given; returns (failed opens, stderr).
fn probe(manager: Option<&Manager>) -> (i32, String) {
    let mut child: Child = Command::new("sh")
        .args(["-c", PROBE])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    if let Some(manager) = manager {
        let pid = i32::try_from(child.id()).unwrap();
        if let Err(error) = manager.add_task(pid) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("add the probe to the cgroup: {error}");
        }
        assert!(manager.pids().unwrap().contains(&pid));
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().expect("the probe exited");
    (code, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn rules(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(serde_json::json!({ "devices": json })).unwrap()
}

#[test]
fn device_rules_are_enforced_and_replaced_on_update() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root to load and attach eBPF programs"
    );
    let root = cgroup2_root();
    let subtree_before = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();

    // Outside the cgroup every open works, or the results below would mean nothing.
    let (failed, stderr) = probe(None);
    assert_eq!(failed, 0, "the probe fails outside the cgroup:\n{stderr}");

    let name = format!("vessel-test-devices-{}", std::process::id());
    let path = CgroupPath::parse(Some(Path::new(&name)), "unused", false).unwrap();
    let manager = Manager::with_mode(&root, &path, CgroupMode::V2);
    let cleanup = Cleanup(&manager);
    manager.create().unwrap();

    let deny_all = serde_json::json!({"allow": false, "access": "rwm"});
    let dev_null =
        serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"});

    // /dev/null fully, /dev/zero for reading only, nothing else.
    manager
        .apply(&rules(serde_json::json!([
            deny_all,
            dev_null,
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
        ])))
        .unwrap();
    let (failed, stderr) = probe(Some(&manager));
    assert_eq!(failed, WRITE_ZERO | READ_FULL, "first rules:\n{stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    println!("first rules: write /dev/zero and read /dev/full denied:\n{stderr}");

    // Narrower: only /dev/null.
    manager
        .apply(&rules(serde_json::json!([deny_all, dev_null])))
        .unwrap();
    let (failed, stderr) = probe(Some(&manager));
    assert_eq!(
        failed,
        READ_ZERO | WRITE_ZERO | READ_FULL,
        "after narrowing:\n{stderr}"
    );

    // Wider again: this passes only if the earlier programs were detached, since every
    // program attached to the cgroup must allow an access.
    manager
        .apply(&rules(serde_json::json!([
            deny_all,
            dev_null,
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"}
        ])))
        .unwrap();
    let (failed, stderr) = probe(Some(&manager));
    assert_eq!(
        failed, 0,
        "after widening (old programs left attached?):\n{stderr}"
    );

    // A rule for /dev/null that allows only reading.
    manager
        .apply(&rules(serde_json::json!([
            deny_all,
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}
        ])))
        .unwrap();
    let (failed, stderr) = probe(Some(&manager));
    assert_eq!(
        failed,
        WRITE_NULL | READ_ZERO | WRITE_ZERO | READ_FULL,
        "read-only /dev/null:\n{stderr}"
    );
    assert_eq!(failed & READ_NULL, 0);

    manager.destroy().unwrap();
    assert!(!root.join(&name).exists());
    drop(cleanup);

    // create() may have enabled controllers at the root of the host's tree: put them back.
    let after = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();
    for controller in after.split_whitespace() {
        if !subtree_before.split_whitespace().any(|c| c == controller) {
            let _ = std::fs::write(
                root.join("cgroup.subtree_control"),
                format!("-{controller}"),
            );
        }
    }
}
