//! v2 manager over a fake tree: what each resource writes, and where.

use std::time::Duration;

use serde_json::json;

use super::block_io::io_weight_from_blkio;
use super::cpu::weight_from_shares;
use super::memory::swap_max;
use super::V2Manager;
use crate::error::CgroupError;
use crate::fake_tree::{resources, FakeTree};
use crate::manager::CgroupManager;
use crate::path::CgroupPath;

/// The container's cgroup below the root.
const CG: &str = "vessel/c1";

/// A tree whose container cgroup offers `controllers`.
fn tree(controllers: &str) -> FakeTree {
    let tree = FakeTree::new();
    tree.file(&cg("cgroup.controllers"), &format!("{controllers}\n"));
    tree
}

fn cg(file: &str) -> String {
    format!("{CG}/{file}")
}

fn manager(tree: &FakeTree) -> V2Manager {
    V2Manager::new(tree.root(), &CgroupPath::parse(None, "c1", false).unwrap())
}

/// The writes `apply` would make, as (file in the container's cgroup, value).
fn planned(tree: &FakeTree, json: serde_json::Value) -> Vec<(String, String)> {
    let dir = tree.path(CG);
    manager(tree)
        .plan(&resources(json))
        .unwrap()
        .writes()
        .iter()
        .map(|w| {
            let file = w.path.strip_prefix(&dir).unwrap().display().to_string();
            (file, w.value.clone())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(file, value)| (file.to_string(), value.to_string()))
        .collect()
}

#[test]
fn conversions_match_the_published_formulas() {
    assert_eq!(weight_from_shares(2), 1);
    assert_eq!(weight_from_shares(1024), 39);
    assert_eq!(weight_from_shares(262_144), 10_000);
    // Out of range shares are clamped like the kernel clamps cpu.shares.
    assert_eq!(weight_from_shares(1), 1);
    assert_eq!(weight_from_shares(1 << 40), 10_000);
    assert_eq!(io_weight_from_blkio(10).unwrap(), 1);
    assert_eq!(io_weight_from_blkio(500).unwrap(), 4950);
    assert_eq!(io_weight_from_blkio(1000).unwrap(), 10_000);
    assert!(io_weight_from_blkio(5).is_err());
    assert!(io_weight_from_blkio(1001).is_err());
}

#[test]
fn swap_is_converted_from_memory_plus_swap() {
    let max = |s: &str| Some(s.to_string());
    assert_eq!(swap_max(Some(3000), Some(1000)).unwrap(), max("2000"));
    assert_eq!(swap_max(Some(1000), Some(1000)).unwrap(), max("0"));
    assert_eq!(swap_max(Some(-1), Some(1000)).unwrap(), max("max"));
    assert_eq!(swap_max(Some(-1), None).unwrap(), max("max"));
    assert_eq!(swap_max(None, Some(-1)).unwrap(), max("max"));
    assert_eq!(swap_max(None, Some(1000)).unwrap(), None);
    assert_eq!(swap_max(None, None).unwrap(), None);
    assert!(swap_max(Some(500), Some(1000)).is_err());
    assert!(swap_max(Some(500), None).is_err());
    assert!(swap_max(Some(500), Some(-1)).is_err());
}

#[test]
fn create_enables_offered_controllers_from_the_root_down() {
    let tree = FakeTree::new();
    tree.file(
        "cgroup.controllers",
        "cpuset cpu io memory hugetlb pids rdma misc net_cls\n",
    )
    .file("cgroup.subtree_control", "cpu\n")
    .file("vessel/cgroup.controllers", "cpu memory pids\n")
    .file("vessel/cgroup.subtree_control", "memory\n");
    manager(&tree).create().unwrap();
    assert_eq!(
        tree.read("cgroup.subtree_control"),
        "cpu\n+cpuset\n+io\n+memory\n+pids\n+hugetlb\n+rdma\n+misc\n"
    );
    assert_eq!(
        tree.read("vessel/cgroup.subtree_control"),
        "memory\n+cpu\n+pids\n"
    );
    assert!(tree.path(CG).is_dir());
    assert!(!tree.exists(&cg("cgroup.subtree_control")));
}

#[test]
fn create_tolerates_a_controller_the_kernel_refuses() {
    let tree = FakeTree::new();
    tree.file("cgroup.controllers", "memory pids\n");
    // No cgroup.subtree_control: every enable fails, creation still succeeds.
    manager(&tree).create().unwrap();
    assert!(tree.path(CG).is_dir());
}

#[test]
fn add_task_writes_cgroup_procs() {
    let tree = tree("");
    tree.file(&cg("cgroup.procs"), "");
    manager(&tree).add_task(77).unwrap();
    assert_eq!(tree.read(&cg("cgroup.procs")), "77\n");
}

#[test]
fn memory_limits_are_written() {
    let tree = tree("memory");
    tree.files(CG, &["memory.max", "memory.low", "memory.swap.max"]);
    manager(&tree)
        .apply(&resources(json!({"memory": {
            "limit": 33554432, "reservation": 16777216, "swap": 50331648,
            "kernel": 1, "kernelTCP": 2, "disableOOMKiller": false
        }})))
        .unwrap();
    assert_eq!(tree.read(&cg("memory.max")), "33554432");
    assert_eq!(tree.read(&cg("memory.low")), "16777216");
    assert_eq!(tree.read(&cg("memory.swap.max")), "16777216");
    assert_eq!(
        planned(&tree, json!({"memory": {"limit": -1, "reservation": -1}})),
        pairs(&[
            ("memory.max", "max"),
            ("memory.low", "max"),
            ("memory.swap.max", "max")
        ])
    );
}

#[test]
fn memory_settings_without_v2_counterpart_are_refused() {
    let tree = tree("memory");
    for json in [
        json!({"memory": {"swappiness": 0}}),
        json!({"memory": {"disableOOMKiller": true}}),
    ] {
        let error = manager(&tree).apply(&resources(json)).unwrap_err();
        assert!(matches!(error, CgroupError::Unsupported { .. }), "{error}");
    }
}

#[test]
fn swap_without_swap_accounting_is_an_error_naming_the_file() {
    let tree = tree("memory");
    tree.files(CG, &["memory.max"]);
    let error = manager(&tree)
        .apply(&resources(json!({"memory": {"limit": 1000, "swap": 2000}})))
        .unwrap_err();
    assert!(error.to_string().contains("memory.swap.max"), "{error}");
    assert_eq!(tree.read(&cg("memory.max")), "");
    // Unlimited swap needs no file.
    assert_eq!(
        planned(&tree, json!({"memory": {"limit": -1}})),
        pairs(&[("memory.max", "max")])
    );
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    let tree = tree("memory");
    tree.file(&cg("memory.current"), "5000\n")
        .files(CG, &["memory.max"]);
    let error = manager(&tree)
        .apply(&resources(
            json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}),
        ))
        .unwrap_err();
    assert!(error.to_string().contains("current usage 5000"), "{error}");
}

#[test]
fn a_missing_controller_is_named_only_when_its_resource_is_set() {
    let tree = tree("pids");
    let cases = [
        (json!({"memory": {"limit": 1000}}), "memory"),
        (json!({"cpu": {"shares": 1024}}), "cpu"),
        (json!({"cpu": {"mems": "0"}}), "cpuset"),
        (json!({"blockIO": {"weight": 100}}), "io"),
        (
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}),
            "hugetlb",
        ),
        (json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}), "rdma"),
        (json!({"unified": {"memory.high": "1000"}}), "memory"),
    ];
    for (json, controller) in cases {
        match manager(&tree).apply(&resources(json)).unwrap_err() {
            CgroupError::ControllerUnavailable {
                controller: named, ..
            } => {
                assert_eq!(named, controller)
            }
            other => panic!("{controller}: {other}"),
        }
    }
    assert!(planned(
        &tree,
        json!({"memory": {}, "cpu": {"cpus": ""}, "blockIO": {"leafWeight": 10}, "rdma": {}})
    )
    .is_empty());
}

#[test]
fn cpu_weight_and_bandwidth() {
    let tree = tree("cpu cpuset");
    assert_eq!(
        planned(
            &tree,
            json!({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 500,
                           "idle": 1, "cpus": "0-1", "mems": "0"}})
        ),
        pairs(&[
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "500"),
            ("cpu.idle", "1"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
        ])
    );
    assert_eq!(
        planned(&tree, json!({"cpu": {"quota": -1, "period": 20000}})),
        pairs(&[("cpu.max", "max 20000")])
    );
    assert_eq!(
        planned(&tree, json!({"cpu": {"quota": 30000}})),
        pairs(&[("cpu.max", "30000")])
    );
    // A period alone keeps the quota in force.
    tree.file(&cg("cpu.max"), "40000 100000\n");
    assert_eq!(
        planned(&tree, json!({"cpu": {"period": 50000}})),
        pairs(&[("cpu.max", "40000 50000")])
    );
}

#[test]
fn realtime_cpu_is_refused() {
    let tree = tree("cpu");
    let error = manager(&tree)
        .apply(&resources(
            json!({"cpu": {"realtimeRuntime": 950, "realtimePeriod": 1000}}),
        ))
        .unwrap_err();
    assert!(matches!(error, CgroupError::Unsupported { .. }), "{error}");
}

#[test]
fn pids_limit() {
    let tree = tree("pids");
    tree.files(CG, &["pids.max"]);
    manager(&tree)
        .apply(&resources(json!({"pids": {"limit": 20}})))
        .unwrap();
    assert_eq!(tree.read(&cg("pids.max")), "20");
    assert_eq!(
        planned(&tree, json!({"pids": {"limit": -1}})),
        pairs(&[("pids.max", "max")])
    );
}

#[test]
fn io_weights_and_limits() {
    let tree = tree("io");
    tree.files(CG, &["io.weight", "io.bfq.weight", "io.max"]);
    manager(&tree)
        .apply(&resources(json!({"blockIO": {
            "weight": 500,
            "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 100}, {"major": 8, "minor": 16}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
        }})))
        .unwrap();
    assert_eq!(tree.read(&cg("io.weight")), "default 4950\n8:0 910\n");
    assert_eq!(tree.read(&cg("io.bfq.weight")), "default 500\n8:0 100\n");
    assert_eq!(
        tree.read(&cg("io.max")),
        "8:0 rbps=1048576\n8:0 wbps=max\n8:0 riops=100\n8:0 wiops=200\n"
    );
}

#[test]
fn io_weight_needs_a_weight_file() {
    let tree = tree("io");
    let error = manager(&tree)
        .apply(&resources(json!({"blockIO": {"weight": 500}})))
        .unwrap_err();
    assert!(error.to_string().contains("io.bfq.weight"), "{error}");
    tree.files(CG, &["io.weight"]);
    let error = manager(&tree)
        .apply(&resources(json!({"blockIO": {"weight": 5}})))
        .unwrap_err();
    assert!(
        matches!(error, CgroupError::InvalidResource { .. }),
        "{error}"
    );
    assert_eq!(tree.read(&cg("io.weight")), "");
}

#[test]
fn hugetlb_and_rdma_limits() {
    let tree = tree("hugetlb rdma");
    tree.files(
        CG,
        &["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"],
    );
    assert_eq!(
        planned(
            &tree,
            json!({
                "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}, {"pageSize": "1GB", "limit": -1}],
                "rdma": {"mlx5_0": {"hcaObjects": 9}}
            })
        ),
        pairs(&[
            ("hugetlb.2MB.max", "2097152"),
            ("hugetlb.2MB.rsvd.max", "2097152"),
            ("hugetlb.1GB.max", "max"),
            ("rdma.max", "mlx5_0 hca_object=9"),
        ])
    );
    let error = manager(&tree)
        .apply(&resources(
            json!({"hugepageLimits": [{"pageSize": "../cgroup.procs", "limit": 1}]}),
        ))
        .unwrap_err();
    assert!(
        matches!(error, CgroupError::InvalidResource { .. }),
        "{error}"
    );
}

#[test]
fn unified_values_are_written_last_and_win() {
    let tree = tree("memory pids");
    tree.files(
        CG,
        &["memory.max", "memory.high", "pids.max", "cgroup.max.depth"],
    );
    assert_eq!(
        planned(
            &tree,
            json!({
                "memory": {"limit": 1000},
                "unified": {"memory.max": "2000", "memory.high": "1500", "cgroup.max.depth": "2"}
            })
        ),
        pairs(&[
            ("memory.max", "1000"),
            ("cgroup.max.depth", "2"),
            ("memory.high", "1500"),
            ("memory.max", "2000"),
        ])
    );
}

#[test]
fn unified_keys_cannot_leave_the_cgroup() {
    let tree = tree("memory");
    tree.files(CG, &["memory.max"]);
    for key in [
        "../memory.max",
        "memory.max/../../x",
        "..",
        "/etc/passwd",
        "memory",
        ".max",
        "memory.max\n",
    ] {
        let error = manager(&tree)
            .apply(&resources(
                json!({"memory": {"limit": 5}, "unified": {key: "1"}}),
            ))
            .unwrap_err();
        assert!(
            matches!(error, CgroupError::InvalidResource { .. }),
            "{key:?}: {error}"
        );
    }
    // The memory limit next to the bad key was not written either.
    assert_eq!(tree.read(&cg("memory.max")), "");
}

#[test]
fn device_rules_write_no_file() {
    // They become an eBPF program (devices_bpf), not writes.
    let tree = tree("");
    assert!(planned(
        &tree,
        json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3}]})
    )
    .is_empty());
}

#[test]
fn a_malformed_device_rule_changes_nothing() {
    let tree = tree("memory");
    tree.file(&cg("memory.max"), "");
    let error = manager(&tree)
        .apply(&resources(json!({
            "memory": {"limit": 1048576},
            "devices": [{"allow": true, "type": "c", "access": "rwx"}]
        })))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("linux.resources.devices[0].access"),
        "{error}"
    );
    assert_eq!(tree.read(&cg("memory.max")), "");
}

#[test]
fn network_resources_are_refused() {
    let tree = tree("");
    let error = manager(&tree)
        .apply(&resources(json!({"network": {"classID": 1}})))
        .unwrap_err();
    assert!(
        error.to_string().contains("linux.resources.network"),
        "{error}"
    );
    assert!(planned(&tree, json!({"network": {}})).is_empty());
}

#[test]
fn freeze_and_thaw_wait_for_cgroup_events() {
    let tree = tree("");
    tree.file(&cg("cgroup.freeze"), "0\n")
        .file(&cg("cgroup.events"), "populated 1\nfrozen 1\n");
    let manager = manager(&tree).with_freezer_timeout(Duration::from_millis(200));
    manager.freeze().unwrap();
    assert_eq!(tree.read(&cg("cgroup.freeze")), "1");
    assert!(manager.is_frozen().unwrap());

    tree.file(&cg("cgroup.events"), "populated 1\nfrozen 0\n");
    manager.thaw().unwrap();
    assert_eq!(tree.read(&cg("cgroup.freeze")), "0");
    assert!(!manager.is_frozen().unwrap());
}

#[test]
fn a_freeze_that_never_completes_times_out_and_thaws_back() {
    let tree = tree("");
    tree.file(&cg("cgroup.freeze"), "0\n")
        .file(&cg("cgroup.events"), "populated 1\nfrozen 0\n");
    let manager = manager(&tree).with_freezer_timeout(Duration::from_millis(30));
    let error = manager.freeze().unwrap_err();
    assert!(
        matches!(error, CgroupError::FreezeTimeout { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("frozen 1"), "{error}");
    assert_eq!(tree.read(&cg("cgroup.freeze")), "0");
}

#[test]
fn freezing_without_cgroup_freeze_is_unsupported() {
    let tree = tree("");
    let error = manager(&tree).freeze().unwrap_err();
    assert!(error.to_string().contains("cgroup.freeze"), "{error}");
    assert!(!manager(&tree).is_frozen().unwrap());
}

#[test]
fn pids_include_child_cgroups() {
    let tree = tree("");
    tree.file(&cg("cgroup.procs"), "5\n")
        .file(&cg("init/cgroup.procs"), "6\n7\n");
    assert_eq!(manager(&tree).pids().unwrap(), vec![5, 6, 7]);
}

#[test]
fn stats_are_read_from_every_controller() {
    let tree = tree("cpu memory pids io hugetlb");
    tree.file(
        &cg("cpu.stat"),
        "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 50\n",
    )
    .file(&cg("memory.current"), "4096\n")
    .file(&cg("memory.max"), "max\n")
    .file(&cg("memory.peak"), "8192\n")
    .file(&cg("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    .file(&cg("memory.swap.current"), "100\n")
    .file(&cg("memory.swap.max"), "1000\n")
    .file(&cg("memory.stat"), "anon 2048\nfile 1024\n")
    .file(&cg("pids.current"), "2\n")
    .file(&cg("pids.max"), "20\n")
    .file(&cg("io.stat"), "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
    .file(&cg("hugetlb.2MB.current"), "2097152\n")
    .file(&cg("hugetlb.2MB.events"), "max 1\n")
    .file(&cg("hugetlb.2MB.rsvd.current"), "0\n");
    let stats = manager(&tree).stats().unwrap();
    assert_eq!(stats.cpu.usage.total, 3_000_000);
    assert_eq!(stats.cpu.usage.user, 2_000_000);
    assert_eq!(stats.cpu.usage.kernel, 1_000_000);
    assert_eq!(stats.cpu.throttling.throttled_periods, 4);
    assert_eq!(stats.cpu.throttling.throttled_time, 50_000);
    assert_eq!(stats.memory.usage.usage, 4096);
    assert_eq!(stats.memory.usage.limit, u64::MAX);
    assert_eq!(stats.memory.usage.max, 8192);
    assert_eq!(stats.memory.usage.failcnt, 3);
    assert_eq!(stats.memory.swap.usage, 4196);
    assert_eq!(stats.memory.swap.limit, u64::MAX);
    assert_eq!(stats.memory.cache, 1024);
    assert_eq!(stats.pids.current, 2);
    assert_eq!(stats.pids.limit, 20);
    assert_eq!(stats.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(stats.blkio.io_service_bytes_recursive[1].value, 8192);
    assert_eq!(stats.blkio.io_serviced_recursive[0].value, 1);
    assert_eq!(stats.hugetlb.len(), 1);
    assert_eq!(stats.hugetlb["2MB"].usage, 2_097_152);
    assert_eq!(stats.hugetlb["2MB"].failcnt, 1);
    assert_eq!(manager(&tree).oom_kill_count().unwrap(), 1);
}

#[test]
fn stats_skip_controllers_the_cgroup_lacks() {
    let tree = tree("");
    tree.file(
        &cg("cpu.stat"),
        "usage_usec 7\nuser_usec 4\nsystem_usec 3\n",
    )
    .file(&cg("memory.current"), "4096\n");
    let stats = manager(&tree).stats().unwrap();
    assert_eq!(stats.cpu.usage.total, 7000);
    assert_eq!(stats.memory.usage.usage, 0);
    assert!(manager(&tree).oom_kill_count().is_err());
}

#[test]
fn destroy_removes_nested_cgroups_but_not_parents() {
    let tree = FakeTree::new();
    tree.dir(&format!("{CG}/a/b")).dir(&format!("{CG}/c"));
    let manager = manager(&tree);
    manager.destroy().unwrap();
    assert!(!tree.exists(CG));
    assert!(tree.exists("vessel"));
    manager.destroy().unwrap();
}
