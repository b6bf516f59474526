//! v1 manager over a fake tree: what each resource writes, and where.

use std::fs as std_fs;
use std::time::Duration;

use serde_json::json;

use super::V1Manager;
use crate::error::CgroupError;
use crate::fake_tree::{resources, FakeTree};
use crate::manager::CgroupManager;
use crate::path::CgroupPath;

/// The container's cgroup below each hierarchy.
const CG: &str = "vessel/c1";

fn tree(controllers: &[&str]) -> FakeTree {
    let tree = FakeTree::new();
    for controller in controllers {
        tree.dir(&format!("{controller}/{CG}"));
    }
    tree
}

fn cg(controller: &str, file: &str) -> String {
    format!("{controller}/{CG}/{file}")
}

fn manager(tree: &FakeTree) -> V1Manager {
    V1Manager::new(tree.root(), &CgroupPath::parse(None, "c1", false).unwrap())
}

/// The writes `apply` would make, as (path below the root, value).
fn planned(tree: &FakeTree, json: serde_json::Value) -> Vec<(String, String)> {
    let root = std_fs::canonicalize(tree.root()).unwrap();
    manager(tree)
        .plan(&resources(json))
        .unwrap()
        .writes()
        .iter()
        .map(|w| {
            let path = w.path.strip_prefix(&root).unwrap().display().to_string();
            (path, w.value.clone())
        })
        .collect()
}

/// Expected writes given as ("<hierarchy>/<file>", value).
fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(hierarchy_file, value)| {
            let (hierarchy, file) = hierarchy_file.split_once('/').unwrap();
            (cg(hierarchy, file), value.to_string())
        })
        .collect()
}

#[test]
fn create_makes_the_cgroup_in_every_hierarchy_and_fills_cpusets() {
    let tree = FakeTree::new();
    for dir in ["memory", "pids", "systemd", "unified", "cpu,cpuacct"] {
        tree.dir(dir);
    }
    tree.file("cpuset/cpuset.cpus", "0-3\n")
        .file("cpuset/cpuset.mems", "0\n")
        // The kernel gives a new cpuset cgroup empty files; the fake tree must have them too.
        .files("cpuset/vessel", &["cpuset.cpus", "cpuset.mems"])
        .file(&cg("cpuset", "cpuset.cpus"), "")
        .file(&cg("cpuset", "cpuset.mems"), "\n");
    manager(&tree).create().unwrap();
    for hierarchy in [
        "memory",
        "pids",
        "systemd",
        "unified",
        "cpu,cpuacct",
        "cpuset",
    ] {
        assert!(
            tree.path(&format!("{hierarchy}/{CG}")).is_dir(),
            "{hierarchy}"
        );
    }
    assert_eq!(tree.read("cpuset/vessel/cpuset.cpus"), "0-3");
    assert_eq!(tree.read(&cg("cpuset", "cpuset.cpus")), "0-3");
    assert_eq!(tree.read(&cg("cpuset", "cpuset.mems")), "0");
}

#[test]
fn create_keeps_a_cpuset_that_is_already_set() {
    let tree = FakeTree::new();
    tree.file("cpuset/cpuset.cpus", "0-3")
        .file("cpuset/cpuset.mems", "0")
        .file("cpuset/vessel/cpuset.cpus", "1")
        .file("cpuset/vessel/cpuset.mems", "0")
        .file(&cg("cpuset", "cpuset.cpus"), "")
        .file(&cg("cpuset", "cpuset.mems"), "");
    manager(&tree).create().unwrap();
    assert_eq!(tree.read("cpuset/vessel/cpuset.cpus"), "1");
    assert_eq!(tree.read(&cg("cpuset", "cpuset.cpus")), "1");
}

#[test]
fn add_task_joins_every_hierarchy() {
    let tree = tree(&["memory", "pids", "systemd", "unified"]);
    for hierarchy in ["memory", "pids", "systemd", "unified"] {
        tree.file(&cg(hierarchy, "cgroup.procs"), "");
    }
    manager(&tree).add_task(4242).unwrap();
    for hierarchy in ["memory", "pids", "systemd", "unified"] {
        assert_eq!(tree.read(&cg(hierarchy, "cgroup.procs")), "4242\n");
    }
}

#[test]
fn memory_limits_are_written() {
    let tree = tree(&["memory"]);
    tree.files(
        &format!("memory/{CG}"),
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.kmem.tcp.limit_in_bytes",
        ],
    );
    tree.file(
        &cg("memory", "memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    manager(&tree)
        .apply(&resources(json!({"memory": {
            "limit": 33554432, "reservation": 16777216, "swap": 67108864,
            "swappiness": 10, "disableOOMKiller": true, "kernelTCP": 1048576, "kernel": 5
        }})))
        .unwrap();
    let read = |file| tree.read(&cg("memory", file));
    assert_eq!(read("memory.limit_in_bytes"), "33554432");
    assert_eq!(read("memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(read("memory.soft_limit_in_bytes"), "16777216");
    assert_eq!(read("memory.swappiness"), "10");
    assert_eq!(read("memory.oom_control"), "1");
    assert_eq!(read("memory.kmem.tcp.limit_in_bytes"), "1048576");
}

#[test]
fn memsw_is_raised_before_memory_and_lowered_after_it() {
    let tree = tree(&["memory"]);
    tree.files(&format!("memory/{CG}"), &["memory.memsw.limit_in_bytes"]);
    tree.file(&cg("memory", "memory.limit_in_bytes"), "100000\n");
    let growing = planned(&tree, json!({"memory": {"limit": 200000, "swap": 300000}}));
    assert_eq!(
        growing,
        pairs(&[
            ("memory/memory.memsw.limit_in_bytes", "300000"),
            ("memory/memory.limit_in_bytes", "200000"),
        ])
    );
    let shrinking = planned(&tree, json!({"memory": {"limit": 50000, "swap": 80000}}));
    assert_eq!(
        shrinking,
        pairs(&[
            ("memory/memory.limit_in_bytes", "50000"),
            ("memory/memory.memsw.limit_in_bytes", "80000"),
        ])
    );
    // Lifting the memory limit lifts memsw too (first, since memory grows).
    let unlimited = planned(&tree, json!({"memory": {"limit": -1}}));
    assert_eq!(
        unlimited,
        pairs(&[
            ("memory/memory.memsw.limit_in_bytes", "-1"),
            ("memory/memory.limit_in_bytes", "-1"),
        ])
    );
}

#[test]
fn zero_means_not_set_and_an_empty_memory_section_needs_no_controller() {
    let tree = tree(&["pids"]);
    assert!(planned(&tree, json!({"memory": {}})).is_empty());
    assert!(planned(&tree, json!({"memory": {"limit": 0, "swap": 0}})).is_empty());
    assert!(planned(&tree, json!({"cpu": {"shares": 0, "quota": 0}})).is_empty());
}

#[test]
fn swap_without_swap_accounting_is_an_error_naming_the_file() {
    let tree = tree(&["memory"]);
    tree.file(&cg("memory", "memory.limit_in_bytes"), "100");
    let error = manager(&tree)
        .apply(&resources(json!({"memory": {"limit": 1000, "swap": 2000}})))
        .unwrap_err();
    assert!(matches!(error, CgroupError::Unsupported { .. }), "{error}");
    assert!(
        error.to_string().contains("memory.memsw.limit_in_bytes"),
        "{error}"
    );
    // Nothing was written.
    assert_eq!(tree.read(&cg("memory", "memory.limit_in_bytes")), "100");
    // Unlimited swap needs no memsw file.
    assert_eq!(
        planned(&tree, json!({"memory": {"limit": -1, "swap": -1}})),
        pairs(&[("memory/memory.limit_in_bytes", "-1")])
    );
}

#[test]
fn invalid_memory_values_are_rejected_before_writing() {
    let tree = tree(&["memory"]);
    tree.file(&cg("memory", "memory.limit_in_bytes"), "100");
    tree.files(
        &format!("memory/{CG}"),
        &["memory.memsw.limit_in_bytes", "memory.swappiness"],
    );
    let cases = [
        (
            json!({"memory": {"limit": 2000, "swap": 1000}}),
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness",
        ),
    ];
    for (json, expected) in cases {
        let error = manager(&tree).apply(&resources(json)).unwrap_err();
        assert!(
            matches!(error, CgroupError::InvalidResource { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert_eq!(tree.read(&cg("memory", "memory.limit_in_bytes")), "100");
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    let tree = tree(&["memory"]);
    tree.file(&cg("memory", "memory.usage_in_bytes"), "5000\n");
    tree.file(&cg("memory", "memory.limit_in_bytes"), "10000");
    let error = manager(&tree)
        .apply(&resources(
            json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}),
        ))
        .unwrap_err();
    assert!(error.to_string().contains("current usage 5000"), "{error}");
    assert_eq!(tree.read(&cg("memory", "memory.limit_in_bytes")), "10000");
    manager(&tree)
        .apply(&resources(
            json!({"memory": {"limit": 8192, "checkBeforeUpdate": true}}),
        ))
        .unwrap();
    assert_eq!(tree.read(&cg("memory", "memory.limit_in_bytes")), "8192");
}

#[test]
fn a_missing_controller_is_named_only_when_its_resource_is_set() {
    let tree = tree(&["cpu"]);
    let cases = [
        (json!({"memory": {"limit": 1000}}), "memory"),
        (json!({"pids": {"limit": 10}}), "pids"),
        (json!({"cpu": {"cpus": "0"}}), "cpuset"),
        (json!({"blockIO": {"weight": 100}}), "blkio"),
        (
            json!({"devices": [{"allow": false, "access": "rwm"}]}),
            "devices",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}),
            "hugetlb",
        ),
        (json!({"network": {"classID": 5}}), "net_cls"),
        (json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}), "rdma"),
    ];
    for (json, controller) in cases {
        let error = manager(&tree).apply(&resources(json)).unwrap_err();
        match &error {
            CgroupError::ControllerUnavailable {
                controller: named, ..
            } => {
                assert_eq!(named, controller)
            }
            other => panic!("{controller}: {other}"),
        }
        assert!(error.to_string().contains(controller), "{error}");
    }
    assert!(planned(
        &tree,
        json!({"devices": [], "hugepageLimits": [], "blockIO": {}})
    )
    .is_empty());
}

#[test]
fn cpu_period_goes_before_quota_and_rt_period_before_runtime() {
    let tree = tree(&["cpu", "cpuset"]);
    let writes = planned(
        &tree,
        json!({"cpu": {
            "shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
            "realtimeRuntime": 950, "realtimePeriod": 1000, "idle": 0,
            "cpus": "0-1", "mems": "0"
        }}),
    );
    assert_eq!(
        writes,
        pairs(&[
            ("cpu/cpu.shares", "512"),
            ("cpu/cpu.cfs_period_us", "100000"),
            ("cpu/cpu.cfs_quota_us", "50000"),
            ("cpu/cpu.cfs_burst_us", "1000"),
            ("cpu/cpu.rt_period_us", "1000"),
            ("cpu/cpu.rt_runtime_us", "950"),
            ("cpu/cpu.idle", "0"),
            ("cpuset/cpuset.cpus", "0-1"),
            ("cpuset/cpuset.mems", "0"),
        ])
    );
    assert_eq!(
        planned(&tree, json!({"cpu": {"quota": -1}})),
        pairs(&[("cpu/cpu.cfs_quota_us", "-1")])
    );
}

#[test]
fn pids_limit_zero_or_negative_is_max() {
    let tree = tree(&["pids"]);
    for (limit, expected) in [(0, "max"), (-1, "max"), (42, "42")] {
        assert_eq!(
            planned(&tree, json!({"pids": {"limit": limit}})),
            pairs(&[("pids/pids.max", expected)])
        );
    }
}

#[test]
fn blkio_weights_pick_the_file_the_kernel_has_and_throttles_are_per_device() {
    let tree = tree(&["blkio"]);
    tree.files(
        &format!("blkio/{CG}"),
        &["blkio.bfq.weight", "blkio.bfq.weight_device"],
    );
    let writes = planned(
        &tree,
        json!({"blockIO": {
            "weight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 0}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
        }}),
    );
    assert_eq!(
        writes,
        pairs(&[
            ("blkio/blkio.bfq.weight", "300"),
            ("blkio/blkio.bfq.weight_device", "8:0 500"),
            ("blkio/blkio.throttle.read_bps_device", "8:0 1048576"),
            ("blkio/blkio.throttle.write_bps_device", "8:16 0"),
            ("blkio/blkio.throttle.read_iops_device", "8:0 100"),
            ("blkio/blkio.throttle.write_iops_device", "8:0 200"),
        ])
    );
    tree.files(&format!("blkio/{CG}"), &["blkio.weight"]);
    assert_eq!(
        planned(&tree, json!({"blockIO": {"weight": 300}})),
        pairs(&[("blkio/blkio.weight", "300")])
    );
}

#[test]
fn blkio_weight_without_a_weight_file_is_an_error_naming_it() {
    let tree = tree(&["blkio"]);
    let error = manager(&tree)
        .apply(&resources(json!({"blockIO": {"weight": 300}})))
        .unwrap_err();
    assert!(error.to_string().contains("blkio.bfq.weight"), "{error}");
    let error = manager(&tree)
        .apply(&resources(
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
        ))
        .unwrap_err();
    assert!(error.to_string().contains("negative"), "{error}");
}

#[test]
fn device_rules_are_written_in_order() {
    let tree = tree(&["devices"]);
    tree.files(&format!("devices/{CG}"), &["devices.allow", "devices.deny"]);
    manager(&tree)
        .apply(&resources(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "m"},
            {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "r"}
        ]})))
        .unwrap();
    assert_eq!(tree.read(&cg("devices", "devices.deny")), "a\nc 1:3 m\n");
    assert_eq!(
        tree.read(&cg("devices", "devices.allow")),
        "c 1:3 rwm\nc 136:* rw\nb *:* r\n"
    );
}

#[test]
fn a_bad_device_rule_writes_nothing() {
    let tree = tree(&["devices"]);
    tree.files(&format!("devices/{CG}"), &["devices.allow", "devices.deny"]);
    let error = manager(&tree)
        .apply(&resources(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}
        ]})))
        .unwrap_err();
    assert!(error.to_string().contains("\"rwx\""), "{error}");
    assert_eq!(tree.read(&cg("devices", "devices.deny")), "");
}

#[test]
fn hugetlb_limits_and_reservations() {
    let tree = tree(&["hugetlb"]);
    tree.files(
        &format!("hugetlb/{CG}"),
        &[
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
            "hugetlb.1GB.limit_in_bytes",
        ],
    );
    let writes = planned(
        &tree,
        json!({"hugepageLimits": [
            {"pageSize": "2MB", "limit": 4194304},
            {"pageSize": "1GB", "limit": 0}
        ]}),
    );
    assert_eq!(
        writes,
        pairs(&[
            ("hugetlb/hugetlb.2MB.limit_in_bytes", "4194304"),
            ("hugetlb/hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
            ("hugetlb/hugetlb.1GB.limit_in_bytes", "0"),
        ])
    );
    let error = manager(&tree)
        .apply(&resources(
            json!({"hugepageLimits": [{"pageSize": "64KB", "limit": 1}]}),
        ))
        .unwrap_err();
    assert!(
        error.to_string().contains("hugetlb.64KB.limit_in_bytes"),
        "{error}"
    );
    let error = manager(&tree)
        .apply(&resources(
            json!({"hugepageLimits": [{"pageSize": "../../memory/x", "limit": 1}]}),
        ))
        .unwrap_err();
    assert!(
        matches!(error, CgroupError::InvalidResource { .. }),
        "{error}"
    );
}

#[test]
fn network_class_and_priorities() {
    let tree = tree(&["net_cls,net_prio"]);
    let writes = planned(
        &tree,
        json!({"network": {"classID": 1048577, "priorities": [
            {"name": "eth0", "priority": 5}, {"name": "lo", "priority": 1}
        ]}}),
    );
    assert_eq!(
        writes,
        pairs(&[
            ("net_cls,net_prio/net_cls.classid", "1048577"),
            ("net_cls,net_prio/net_prio.ifpriomap", "eth0 5"),
            ("net_cls,net_prio/net_prio.ifpriomap", "lo 1"),
        ])
    );
    let error = manager(&tree)
        .apply(&resources(
            json!({"network": {"priorities": [{"name": "eth0 9\nlo", "priority": 5}]}}),
        ))
        .unwrap_err();
    assert!(
        matches!(error, CgroupError::InvalidResource { .. }),
        "{error}"
    );
}

#[test]
fn rdma_limits() {
    let tree = tree(&["rdma"]);
    assert_eq!(
        planned(
            &tree,
            json!({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}})
        ),
        pairs(&[("rdma/rdma.max", "mlx5_0 hca_handle=3 hca_object=100")])
    );
}

#[test]
fn unified_resources_are_refused_on_v1() {
    let tree = tree(&["memory"]);
    let error = manager(&tree)
        .apply(&resources(json!({"unified": {"memory.high": "1000"}})))
        .unwrap_err();
    assert!(matches!(error, CgroupError::Unsupported { .. }), "{error}");
    assert!(
        error.to_string().contains("linux.resources.unified"),
        "{error}"
    );
    assert!(planned(&tree, json!({"unified": {}})).is_empty());
}

#[test]
fn a_value_the_kernel_refuses_names_file_and_value_and_keeps_the_cause() {
    let tree = tree(&["pids"]);
    // A directory in place of the file makes the open fail, like a kernel refusal would.
    tree.dir(&cg("pids", "pids.max"));
    let error = manager(&tree)
        .apply(&resources(json!({"pids": {"limit": 7}})))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("Cannot write \"7\" to "), "{message}");
    assert!(message.ends_with("pids/vessel/c1/pids.max"), "{message}");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn freeze_and_thaw_through_freezer_state() {
    let tree = tree(&["freezer"]);
    tree.file(&cg("freezer", "freezer.state"), "THAWED\n");
    let manager = manager(&tree).with_freezer_timeout(Duration::from_millis(200));
    assert!(!manager.is_frozen().unwrap());
    manager.freeze().unwrap();
    assert_eq!(tree.read(&cg("freezer", "freezer.state")), "FROZEN");
    assert!(manager.is_frozen().unwrap());
    manager.thaw().unwrap();
    assert_eq!(tree.read(&cg("freezer", "freezer.state")), "THAWED");
    assert!(!manager.is_frozen().unwrap());
}

#[test]
fn freezing_without_a_freezer_names_it() {
    let tree = tree(&["memory"]);
    let error = manager(&tree).freeze().unwrap_err();
    assert!(error.to_string().contains("freezer"), "{error}");
}

#[test]
fn pids_come_from_the_pids_hierarchy_including_child_cgroups() {
    let tree = tree(&["pids", "memory"]);
    tree.file(&cg("pids", "cgroup.procs"), "10\n11\n")
        .file(&cg("pids", "nested/cgroup.procs"), "12\n")
        .file(&cg("memory", "cgroup.procs"), "99\n");
    assert_eq!(manager(&tree).pids().unwrap(), vec![10, 11, 12]);

    let tree = self::tree(&["memory", "freezer"]);
    tree.file(&cg("freezer", "cgroup.procs"), "20\n")
        .file(&cg("memory", "cgroup.procs"), "21\n");
    assert_eq!(manager(&tree).pids().unwrap(), vec![20]);
}

#[test]
fn stats_are_read_from_every_controller() {
    let tree = tree(&["cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb"]);
    tree.file(&cg("cpuacct", "cpuacct.usage"), "3000000000\n")
        .file(
            &cg("cpuacct", "cpuacct.usage_percpu"),
            "1000000000 2000000000 \n",
        )
        .file(&cg("cpuacct", "cpuacct.usage_percpu_user"), "600 700\n")
        .file(&cg("cpuacct", "cpuacct.usage_percpu_sys"), "400 300\n")
        .file(&cg("cpuacct", "cpuacct.stat"), "user 200\nsystem 100\n")
        .file(
            &cg("cpu", "cpu.stat"),
            "nr_periods 10\nnr_throttled 3\nthrottled_time 4500\n",
        )
        .file(&cg("memory", "memory.usage_in_bytes"), "4096\n")
        .file(&cg("memory", "memory.max_usage_in_bytes"), "8192\n")
        .file(&cg("memory", "memory.limit_in_bytes"), "33554432\n")
        .file(&cg("memory", "memory.failcnt"), "2\n")
        .file(&cg("memory", "memory.memsw.usage_in_bytes"), "5000\n")
        .file(
            &cg("memory", "memory.memsw.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .file(
            &cg("memory", "memory.stat"),
            "cache 1024\nrss 2048\ntotal_cache 1024\n",
        )
        .file(&cg("pids", "pids.current"), "3\n")
        .file(&cg("pids", "pids.max"), "max\n")
        .file(
            &cg("blkio", "blkio.bfq.io_service_bytes_recursive"),
            "Total 0\n",
        )
        .file(
            &cg("blkio", "blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n",
        )
        .file(
            &cg("blkio", "blkio.throttle.io_serviced_recursive"),
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        )
        .file(&cg("hugetlb", "hugetlb.2MB.usage_in_bytes"), "2097152\n")
        .file(
            &cg("hugetlb", "hugetlb.2MB.max_usage_in_bytes"),
            "4194304\n",
        )
        .file(&cg("hugetlb", "hugetlb.2MB.failcnt"), "1\n")
        .file(&cg("hugetlb", "hugetlb.2MB.rsvd.usage_in_bytes"), "0\n");
    let stats = manager(&tree).stats().unwrap();
    assert_eq!(stats.cpu.usage.total, 3_000_000_000);
    assert_eq!(stats.cpu.usage.percpu, vec![1_000_000_000, 2_000_000_000]);
    assert_eq!(stats.cpu.usage.percpu_user, vec![600, 700]);
    assert_eq!(stats.cpu.usage.percpu_kernel, vec![400, 300]);
    // No cpuacct.usage_user here: ticks of 10 ms from cpuacct.stat.
    assert_eq!(stats.cpu.usage.user, 2_000_000_000);
    assert_eq!(stats.cpu.usage.kernel, 1_000_000_000);
    assert_eq!(stats.cpu.throttling.throttled_periods, 3);
    assert_eq!(stats.cpu.throttling.throttled_time, 4500);
    assert_eq!(stats.memory.usage.usage, 4096);
    assert_eq!(stats.memory.usage.max, 8192);
    assert_eq!(stats.memory.usage.limit, 33_554_432);
    assert_eq!(stats.memory.usage.failcnt, 2);
    assert_eq!(stats.memory.swap.usage, 5000);
    assert_eq!(stats.memory.cache, 1024);
    assert_eq!(stats.memory.raw["rss"], 2048);
    assert_eq!(stats.pids.current, 3);
    assert_eq!(stats.pids.limit, 0);
    let bytes = &stats.blkio.io_service_bytes_recursive;
    assert_eq!(bytes.len(), 3);
    assert_eq!(
        (bytes[1].major, bytes[1].op.as_str(), bytes[1].value),
        (8, "Write", 8192)
    );
    assert_eq!(stats.blkio.io_serviced_recursive.len(), 2);
    assert_eq!(stats.hugetlb.len(), 1);
    assert_eq!(stats.hugetlb["2MB"].usage, 2_097_152);
    assert_eq!(stats.hugetlb["2MB"].failcnt, 1);

    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["memory"]["usage"]["usage"], 4096);
    assert_eq!(json["cpu"]["usage"]["total"], 3_000_000_000u64);
    assert_eq!(json["pids"]["current"], 3);
}

#[test]
fn cpu_times_prefer_the_nanosecond_files() {
    let tree = tree(&["cpuacct"]);
    tree.file(&cg("cpuacct", "cpuacct.usage_user"), "123\n")
        .file(&cg("cpuacct", "cpuacct.usage_sys"), "45\n")
        .file(&cg("cpuacct", "cpuacct.stat"), "user 200\nsystem 100\n");
    let stats = manager(&tree).stats().unwrap();
    assert_eq!((stats.cpu.usage.user, stats.cpu.usage.kernel), (123, 45));
}

#[test]
fn corrupt_stats_name_the_file() {
    let tree = tree(&["cpuacct"]);
    tree.file(&cg("cpuacct", "cpuacct.usage"), "lots\n");
    let error = manager(&tree).stats().unwrap_err();
    assert!(error.to_string().contains("cpuacct.usage"), "{error}");
}

#[test]
fn oom_kills_are_counted_from_oom_control() {
    let tree = tree(&["memory"]);
    tree.file(
        &cg("memory", "memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    assert_eq!(manager(&tree).oom_kill_count().unwrap(), 2);
}

#[test]
fn destroy_removes_nested_cgroups_but_not_parents() {
    let tree = tree(&["memory", "pids", "systemd"]);
    tree.dir(&format!("memory/{CG}/nested/deeper"));
    let manager = manager(&tree);
    manager.destroy().unwrap();
    for hierarchy in ["memory", "pids", "systemd"] {
        assert!(!tree.exists(&format!("{hierarchy}/{CG}")), "{hierarchy}");
        assert!(tree.exists(&format!("{hierarchy}/vessel")), "{hierarchy}");
    }
    // Already gone is fine.
    manager.destroy().unwrap();
}

#[test]
fn destroy_reports_a_cgroup_it_cannot_remove() {
    let tree = tree(&["memory"]);
    // A regular file keeps a fake directory non-empty, as a live child would on cgroupfs.
    tree.file(&cg("memory", "memory.limit_in_bytes"), "1");
    let error = manager(&tree).destroy().unwrap_err();
    assert!(matches!(error, CgroupError::RemoveDir { .. }), "{error}");
    assert!(error.to_string().contains("memory/vessel/c1"), "{error}");
}
