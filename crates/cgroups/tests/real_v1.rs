//! The v1 manager on the real cgroup hierarchy of a v1 (or hybrid) host, such as vessel's
//! build machines. Needs root; it fails, rather than skips, anywhere else, so that a machine
//! that cannot run it is noticed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use vessel_cgroups::{detect_mode, CgroupManager, CgroupMode, CgroupPath, LinuxResources, Manager};

const ROOT: &str = "/sys/fs/cgroup";
const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
const PIDS_LIMIT: u64 = 32;

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
fn limits_tasks_freezer_and_removal_on_the_real_v1_hierarchy() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root to create cgroups under {ROOT}"
    );
    let root = Path::new(ROOT);
    assert!(
        root.join("memory").is_dir(),
        "{ROOT}/memory is missing: this test needs a cgroup v1 (or hybrid) host"
    );
    assert_eq!(detect_mode(root).unwrap(), CgroupMode::V1);

    let name = format!("vessel-test-{}", std::process::id());
    let path = CgroupPath::parse(Some(Path::new(&format!("/{name}"))), "unused", false).unwrap();
    let manager = Manager::new(root, &path).unwrap();
    assert_eq!(manager.mode(), CgroupMode::V1);
    let mut cleanup = Cleanup {
        manager: &manager,
        child: None,
    };

    manager.create().unwrap();
    for controller in ["memory", "pids", "freezer", "cpuset"] {
        assert!(root.join(controller).join(&name).is_dir(), "{controller}");
    }
    // A new cpuset got its parent's CPUs and memory nodes.
    assert_eq!(
        read(root.join("cpuset").join(&name).join("cpuset.cpus")),
        read(root.join("cpuset/cpuset.cpus"))
    );

    let resources: LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": MEMORY_LIMIT},
        "pids": {"limit": PIDS_LIMIT}
    }))
    .unwrap();
    manager.apply(&resources).unwrap();
    let memory_dir = root.join("memory").join(&name);
    assert_eq!(
        read(memory_dir.join("memory.limit_in_bytes")),
        MEMORY_LIMIT.to_string()
    );
    assert_eq!(
        read(root.join("pids").join(&name).join("pids.max")),
        PIDS_LIMIT.to_string()
    );

    let child = cleanup
        .child
        .insert(Command::new("sleep").arg("5").spawn().unwrap());
    let pid = i32::try_from(child.id()).unwrap();
    manager.add_task(pid).unwrap();
    assert_eq!(read(memory_dir.join("cgroup.procs")), pid.to_string());
    assert_eq!(manager.pids().unwrap(), vec![pid]);

    manager.freeze().unwrap();
    assert!(manager.is_frozen().unwrap());
    assert_eq!(
        read(root.join("freezer").join(&name).join("freezer.state")),
        "FROZEN"
    );
    manager.thaw().unwrap();
    assert!(!manager.is_frozen().unwrap());

    let stats = manager.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, MEMORY_LIMIT);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, PIDS_LIMIT);
    assert_eq!(manager.oom_kill_count().unwrap(), 0);

    // A limit the kernel refuses comes back as an error naming the file.
    let refused: LinuxResources =
        serde_json::from_value(serde_json::json!({"cpu": {"cpus": "4096"}})).unwrap();
    let error = manager.apply(&refused).unwrap_err();
    assert!(error.to_string().contains("cpuset.cpus"), "{error}");

    child.kill().unwrap();
    child.wait().unwrap();
    manager.destroy().unwrap();
    for controller in ["memory", "pids", "freezer", "cpuset", "systemd", "unified"] {
        assert!(!root.join(controller).join(&name).exists(), "{controller}");
    }
    drop(cleanup);
}
