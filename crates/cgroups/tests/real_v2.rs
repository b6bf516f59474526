//! The v2 manager on a real cgroup2 hierarchy, mounted in a private mount namespace so the
//! host's mounts are left alone. On vessel's hybrid build machines the v2 tree offers only
//! `hugetlb` (every other controller is bound to v1), so that is the one resource applied;
//! process membership and the freezer are core v2 features and are tested fully.
//!
//! `unshare(CLONE_NEWNS)` is refused in a multi-threaded process such as the test harness, so
//! the test runs a helper test of this same binary under `unshare --mount`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use vessel_cgroups::{detect_mode, CgroupManager, CgroupMode, CgroupPath, LinuxResources, Manager};

/// Where the helper mounts cgroup2; set by the test for the helper.
const MOUNT_ENV: &str = "VESSEL_TEST_CGROUP2_MOUNT";
const HELPER: &str = "helper_in_private_mount_namespace";

#[test]
fn processes_freezer_and_removal_on_a_real_cgroup2_mount() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root to mount cgroup2");
    let mount_point = tempfile::tempdir().unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            HELPER,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MOUNT_ENV, mount_point.path())
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "helper failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the helper did not run:\n{stdout}"
    );
}

/// Kills the sleeping process and removes the cgroup even when an assertion fails midway.
struct Cleanup<'a> {
    manager: &'a Manager,
    child: Option<Child>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.manager.thaw();
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.manager.destroy();
    }
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
        .trim()
        .to_string()
}

#[test]
#[ignore = "helper: run by processes_freezer_and_removal_on_a_real_cgroup2_mount inside a private mount namespace"]
fn helper_in_private_mount_namespace() {
    let root = PathBuf::from(std::env::var_os(MOUNT_ENV).expect("run through the parent test"));
    let status = Command::new("mount")
        .args(["-t", "cgroup2", "cgroup2"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t cgroup2 on {}", root.display());
    assert_eq!(detect_mode(&root).unwrap(), CgroupMode::V2);

    let subtree_before = read(root.join("cgroup.subtree_control"));
    let name = format!("vessel-test-v2-{}", std::process::id());
    let path = CgroupPath::parse(Some(Path::new(&name)), "unused", false).unwrap();
    let manager = Manager::new(&root, &path).unwrap();
    assert_eq!(manager.mode(), CgroupMode::V2);
    let dir = root.join(&name);
    let mut cleanup = Cleanup {
        manager: &manager,
        child: None,
    };

    manager.create().unwrap();
    assert!(dir.is_dir());
    let offered = read(root.join("cgroup.controllers"));
    if offered.split_whitespace().any(|c| c == "hugetlb") {
        // create() enabled it for the new cgroup.
        assert!(read(dir.join("cgroup.controllers")).contains("hugetlb"));
        if dir.join("hugetlb.2MB.max").exists() {
            let resources: LinuxResources = serde_json::from_value(serde_json::json!({
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
            }))
            .unwrap();
            manager.apply(&resources).unwrap();
            assert_eq!(read(dir.join("hugetlb.2MB.max")), "4194304");
            println!("hugetlb: 2MB limit applied and read back");
        }
    }
    // Whatever the host offers, a memory limit without the memory controller is refused
    // clearly, or applied when the controller is there.
    let memory: LinuxResources =
        serde_json::from_value(serde_json::json!({"memory": {"limit": 67108864}})).unwrap();
    match manager.apply(&memory) {
        Ok(()) => assert_eq!(read(dir.join("memory.max")), "67108864"),
        Err(error) => {
            assert!(error.to_string().contains("memory"), "{error}");
            println!("memory: refused as expected: {error}");
        }
    }

    let child = cleanup
        .child
        .insert(Command::new("sleep").arg("5").spawn().unwrap());
    let pid = i32::try_from(child.id()).unwrap();
    manager.add_task(pid).unwrap();
    assert_eq!(read(dir.join("cgroup.procs")), pid.to_string());
    assert_eq!(manager.pids().unwrap(), vec![pid]);

    manager.freeze().unwrap();
    assert!(manager.is_frozen().unwrap());
    assert!(read(dir.join("cgroup.events")).contains("frozen 1"));
    manager.thaw().unwrap();
    assert!(!manager.is_frozen().unwrap());
    assert!(read(dir.join("cgroup.events")).contains("frozen 0"));
    assert!(manager.stats().unwrap().cpu.usage.total > 0);

    child.kill().unwrap();
    child.wait().unwrap();
    manager.destroy().unwrap();
    assert!(!dir.exists());
    drop(cleanup);

    // This mount shows the host's real v2 hierarchy: put the root's controllers back.
    for controller in read(root.join("cgroup.subtree_control")).split_whitespace() {
        if !subtree_before.split_whitespace().any(|c| c == controller) {
            let _ = fs::write(
                root.join("cgroup.subtree_control"),
                format!("-{controller}"),
            );
        }
    }
}
