//! cgroups v1 (this machine's layout): limits seen from inside and on the
//! host, enforcement, update, pause/resume, ps and events.

mod common;

use common::{describe, Ctx};
use serde_json::{json, Value};

const MIB: i64 = 1 << 20;

#[test]
fn memory_limit_inside_and_on_host() {
    let mut ctx = Ctx::new(
        "memlimit",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /proc/self/cgroup",
        ],
    );
    ctx.config["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap().to_owned();
    // Run detached-style: create, check the host, then start and read the output.
    ctx.create_ok();
    assert_eq!(
        ctx.cgroup_file("memory", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    let pid = ctx.pid();
    let procs = ctx.cgroup_file("memory", "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init {pid} not in the cgroup: {procs}"
    );
    // The host sees the container in /vessel-test/<name> of every hierarchy.
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for ctl in ["memory", "pids", "cpu", "cpuacct", "freezer", "devices"] {
        let want = format!(":{ctl}:/vessel-test/{}", ctx.id());
        assert!(host_view.contains(&want), "{want} not in\n{host_view}");
    }
    ctx.rt_ok(&["delete", "--force", ctx.id()]);

    // And from inside, with a cgroup namespace, the container is at the root.
    let out = ctx.rt(&["run", "--bundle", &bundle, ctx.id()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some((64 * MIB).to_string().as_str()));
    assert!(
        lines.any(|l| l.ends_with(":memory:/")),
        "not at the root of its cgroup namespace: {stdout}"
    );
}

#[test]
fn without_cgroup_namespace_the_container_sees_its_own_cgroup() {
    let mut ctx = Ctx::new(
        "nocgns",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /proc/self/cgroup",
        ],
    );
    ctx.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    ctx.config["linux"]["resources"]["memory"] = json!({"limit": 48 * MIB});
    let out = ctx.run_ok();
    assert!(out.starts_with(&format!("{}\n", 48 * MIB)), "{out}");
    assert!(
        out.contains(&format!(":memory:/vessel-test/{}", ctx.id())),
        "{out}"
    );
}

#[test]
fn memory_limit_oom_kills_with_137() {
    let mut ctx = Ctx::new(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    ctx.config["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB, "swap": 32 * MIB});
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
}

#[test]
fn pids_limit_stops_forks() {
    let mut ctx = Ctx::new(
        "pids",
        &[
            "sh",
            "-c",
            // `read` is a builtin: it works when no process can be forked any more.
            "sh -c 'for i in $(seq 1 30); do sleep 1000 & done' 2>&1; \
             read n < /sys/fs/cgroup/pids/pids.current; echo current=$n; \
             read m < /sys/fs/cgroup/pids/pids.max; echo max=$m; \
             read e < /sys/fs/cgroup/pids/pids.events; echo events=$e",
        ],
    );
    ctx.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    let out = ctx.run_ok();
    assert!(out.contains("can't fork"), "{out}");
    // The limit was hit (20 tasks: this shell, the forking shell and 18
    // sleeps); the forking shell then gave up and exited.
    assert!(out.contains("current=19\n"), "{out}");
    assert!(out.contains("max=20\n"), "{out}");
    let failed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("events=max "))
        .unwrap_or_else(|| panic!("no pids.events: {out}"))
        .parse()
        .unwrap();
    assert!(failed > 0, "{out}");
}

#[test]
fn cpu_settings_are_written() {
    let mut ctx = Ctx::new("cpu", &["sleep", "1000"]);
    ctx.config["linux"]["resources"]["cpu"] = json!({
        "shares": 512, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"
    });
    ctx.create_ok();
    assert_eq!(ctx.cgroup_file("cpu", "cpu.shares"), "512");
    assert_eq!(ctx.cgroup_file("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(ctx.cgroup_file("cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(ctx.cgroup_file("cpuset", "cpuset.cpus"), "0");
    assert_eq!(ctx.cgroup_file("cpuset", "cpuset.mems"), "0");
}

#[test]
fn update_with_flags_and_a_resources_file() {
    let mut ctx = Ctx::new("update", &["sleep", "1000"]);
    ctx.config["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB});
    ctx.start_ok();
    assert_eq!(
        ctx.cgroup_file("memory", "memory.limit_in_bytes"),
        (32 * MIB).to_string()
    );
    ctx.rt_ok(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "33",
        "--cpu-shares",
        "256",
        ctx.id(),
    ]);
    assert_eq!(
        ctx.cgroup_file("memory", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(ctx.cgroup_file("pids", "pids.max"), "33");
    assert_eq!(ctx.cgroup_file("cpu", "cpu.shares"), "256");

    let file = ctx.path("resources.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 96 * MIB}, "pids": {"limit": 44}, "cpu": {"quota": 30000, "period": 100000}})
            .to_string(),
    )
    .unwrap();
    ctx.rt_ok(&["update", "-r", file.to_str().unwrap(), ctx.id()]);
    assert_eq!(
        ctx.cgroup_file("memory", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    assert_eq!(ctx.cgroup_file("pids", "pids.max"), "44");
    assert_eq!(ctx.cgroup_file("cpu", "cpu.cfs_quota_us"), "30000");
    // Seen from inside too.
    let inside = ctx.exec_ok(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(inside.trim(), (96 * MIB).to_string());

    // A value the kernel refuses is an error that leaves the old value.
    let err = ctx.rt_err(&["update", "--cpu-quota", "10", ctx.id()]);
    assert!(err.contains("cfs_quota_us"), "{err}");
    assert_eq!(ctx.cgroup_file("cpu", "cpu.cfs_quota_us"), "30000");

    // A malformed resources file names itself.
    std::fs::write(&file, "{\"memory\": {\"limit\": \"lots\"}}").unwrap();
    let err = ctx.rt_err(&["update", "-r", file.to_str().unwrap(), ctx.id()]);
    assert!(err.contains("resources.json"), "{err}");
}

#[test]
fn update_of_a_stopped_container_fails() {
    let ctx = Ctx::new("updstopped", &["true"]);
    ctx.start_ok();
    ctx.wait_status("stopped");
    let err = ctx.rt_err(&["update", "--memory", "64m", ctx.id()]);
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn pause_and_resume() {
    let ctx = Ctx::new("pause", &["sleep", "1000"]);
    ctx.start_ok();
    ctx.rt_ok(&["pause", ctx.id()]);
    assert_eq!(ctx.state()["status"], "paused");
    assert_eq!(ctx.cgroup_file("freezer", "freezer.state"), "FROZEN");
    let err = ctx.rt_err(&["pause", ctx.id()]);
    assert!(err.contains("paused"), "{err}");
    let err = ctx.rt_err(&["start", ctx.id()]);
    assert!(err.contains("paused"), "{err}");

    ctx.rt_ok(&["resume", ctx.id()]);
    assert_eq!(ctx.state()["status"], "running");
    assert_eq!(ctx.cgroup_file("freezer", "freezer.state"), "THAWED");
    let err = ctx.rt_err(&["resume", ctx.id()]);
    assert!(err.contains("running"), "{err}");

    // A paused container can be force-deleted.
    ctx.rt_ok(&["pause", ctx.id()]);
    ctx.rt_ok(&["delete", "--force", ctx.id()]);
    assert!(!ctx.cgroup_dir("freezer").exists());
    assert!(!ctx.root.join(ctx.id()).exists());
}

#[test]
fn ps_lists_the_containers_processes() {
    let ctx = Ctx::new("ps", &["sleep", "1000"]);
    ctx.start_ok();
    let pid = ctx.pid();
    let pids: Value =
        serde_json::from_str(&ctx.rt_ok(&["ps", "--format", "json", ctx.id()])).unwrap();
    let pids: Vec<i64> = pids
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert_eq!(pids, [pid as i64]);

    let table = ctx.rt_ok(&["ps", ctx.id()]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(
        table.lines().skip(1).any(|l| l.contains("sleep 1000")),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "{table}");
}

#[test]
fn events_stats_prints_json() {
    let mut ctx = Ctx::new("events", &["sleep", "1000"]);
    ctx.config["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
    ctx.start_ok();
    let out = ctx.rt_ok(&["events", "--stats", ctx.id()]);
    let ev: Value = serde_json::from_str(out.lines().next().unwrap())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], ctx.id(), "{ev}");
    let text = ev["data"].to_string();
    assert!(
        text.contains(&(64 * MIB).to_string()),
        "no memory limit in {ev}"
    );
    assert!(ev["data"]["pids"]["current"].as_u64() >= Some(1), "{ev}");
}

#[test]
fn device_rules_deny_all_keeps_the_default_devices_usable() {
    let mut ctx = Ctx::new(
        "devcg",
        &[
            "sh",
            "-c",
            "echo x > /dev/null && echo null-ok; head -c 1 /dev/zero | wc -c; \
             head -c 1 /dev/mem 2>&1 >/dev/null | grep -o 'Operation not permitted'",
        ],
    );
    // runc's default spec: deny everything, let the runtime allow the defaults.
    ctx.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    ctx.config["linux"]["devices"] =
        json!([{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1, "fileMode": 0o600}]);
    assert_eq!(ctx.run_ok(), "null-ok\n1\nOperation not permitted\n");
}
