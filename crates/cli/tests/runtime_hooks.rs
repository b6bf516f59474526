//! The six OCI hook kinds: when they run, where, with the state on stdin;
//! failures and timeouts.

mod common;

use std::path::Path;

use common::{describe, Ctx};
use serde_json::{json, Value};

/// A hook that saves its stdin to `out` (a path where the hook runs).
fn save_stdin(out: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", out.display())],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    })
}

fn read_json(p: &Path) -> Value {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("hook output {}: {e}", p.display()));
    serde_json::from_slice(&data)
        .unwrap_or_else(|e| panic!("hook output {} is not JSON ({e})", p.display()))
}

#[test]
fn every_hook_runs_with_the_state_on_stdin() {
    let mut ctx = Ctx::new("hooks", &["sleep", "1000"]);
    let prestart = ctx.path("prestart.json");
    let create_runtime = ctx.path("createRuntime.json");
    let create_container = ctx.path("createContainer.json");
    let poststart = ctx.path("poststart.json");
    let poststop = ctx.path("poststop.json");
    std::fs::write(ctx.rootfs().join("etc/only-in-container"), "x").unwrap();
    // startContainer runs inside the container: its paths are the container's.
    let start_container = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > /tmp/startContainer.json; ls /etc/only-in-container > /tmp/start-saw"],
        "env": ["PATH=/bin"]
    });
    ctx.config["hooks"] = json!({
        "prestart": [save_stdin(&prestart)],
        "createRuntime": [save_stdin(&create_runtime)],
        "createContainer": [save_stdin(&create_container)],
        "startContainer": [start_container],
        "poststart": [save_stdin(&poststart)],
        "poststop": [save_stdin(&poststop)],
    });
    ctx.config["annotations"] = json!({"org.example.key": "value"});
    ctx.create_ok();
    let pid = ctx.pid() as i64;
    let bundle = std::fs::canonicalize(&ctx.bundle).unwrap();
    for p in [&prestart, &create_runtime, &create_container] {
        let st = read_json(p);
        assert_eq!(st["id"], ctx.id(), "{}: {st}", p.display());
        assert_eq!(st["status"], "creating", "{}: {st}", p.display());
        assert_eq!(st["pid"].as_i64(), Some(pid), "{}: {st}", p.display());
        assert_eq!(
            st["bundle"],
            bundle.to_str().unwrap(),
            "{}: {st}",
            p.display()
        );
        assert_eq!(st["annotations"]["org.example.key"], "value", "{st}");
    }
    assert!(!poststart.exists() && !ctx.rootfs().join("tmp/startContainer.json").exists());

    ctx.rt_ok(&["start", ctx.id()]);
    // startContainer runs in the container after `start` returned; it writes
    // start-saw after it has saved its stdin.
    let saw = ctx.rootfs().join("tmp/start-saw");
    Ctx::wait_until("the startContainer hook", || {
        std::fs::read_to_string(&saw).is_ok_and(|s| s.ends_with('\n'))
    });
    let st = read_json(&ctx.rootfs().join("tmp/startContainer.json"));
    assert_eq!(st["id"], ctx.id());
    assert_eq!(st["pid"].as_i64(), Some(pid));
    assert_eq!(
        std::fs::read_to_string(&saw).unwrap(),
        "/etc/only-in-container\n"
    );
    let st = read_json(&poststart);
    assert_eq!(st["id"], ctx.id());
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_i64(), Some(pid));
    assert!(!poststop.exists());

    ctx.rt_ok(&["delete", "--force", ctx.id()]);
    let st = read_json(&poststop);
    assert_eq!(st["id"], ctx.id());
    assert_eq!(st["status"], "stopped");
}

#[test]
fn hooks_run_in_order() {
    let mut ctx = Ctx::new("hookorder", &["true"]);
    let log = ctx.path("order.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", log.display())]});
    ctx.config["hooks"] = json!({
        "prestart": [hook("prestart1"), hook("prestart2")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    ctx.run_ok();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "prestart1\nprestart2\ncreateRuntime\ncreateContainer\npoststart\npoststop\n"
    );
}

/// The init is moved into its cgroup while it builds its mounts (the
/// kernel's wait for that move overlaps with them); hooks must still find it
/// there, in every controller, and in its own cgroup namespace.
#[test]
fn create_hooks_find_the_init_in_its_cgroup() {
    let mut ctx = Ctx::new("hookcgroup", &["true"]);
    let out = ctx.path("init-cgroup.txt");
    let ns = ctx.path("init-cgroupns.txt");
    let script = format!(
        "pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); cat /proc/$pid/cgroup > {}; \
         readlink /proc/$pid/ns/cgroup > {}",
        out.display(),
        ns.display()
    );
    ctx.config["hooks"] = json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}],
    });
    ctx.create_ok();
    let cgroups = std::fs::read_to_string(&out).unwrap();
    let want = format!("/{}/{}", common::CGROUP_PARENT, ctx.name);
    for controller in ["memory", "pids", "cpu", "freezer", "devices", "blkio"] {
        let line = cgroups
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line in {cgroups}"));
        assert!(
            line.ends_with(&want),
            "init not in {want}: {line}\n{cgroups}"
        );
    }
    let host_ns = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let init_ns = std::fs::read_to_string(&ns).unwrap();
    assert_ne!(
        init_ns.trim(),
        host_ns.to_str().unwrap(),
        "the init has no cgroup namespace of its own"
    );
    ctx.rt_ok(&["delete", "--force", ctx.id()]);
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    let mut ctx = Ctx::new("hookfail", &["true"]);
    ctx.config["hooks"] = json!({"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo hook-broke >&2; exit 3"]}
    ]});
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(
        err.contains("prestart") && err.contains("/bin/sh") && err.contains("hook-broke"),
        "{err}"
    );
    ctx.assert_nothing_left(ctx.id());
}

#[test]
fn failing_create_container_hook_fails_create_and_leaves_nothing() {
    let mut ctx = Ctx::new("cchookfail", &["true"]);
    ctx.config["hooks"] = json!({"createContainer": [{"path": "/no/such/hook"}]});
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(
        err.contains("createContainer") && err.contains("/no/such/hook"),
        "{err}"
    );
    ctx.assert_nothing_left(ctx.id());
}

#[test]
fn hook_timeout() {
    let mut ctx = Ctx::new("hooktimeout", &["true"]);
    ctx.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", "600"], "timeout": 1}
    ]});
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(
        err.contains("createRuntime") && err.contains("timed out"),
        "{err}"
    );
    ctx.assert_nothing_left(ctx.id());
    // The hook was killed, not left running.
    assert!(common::processes_mentioning("sleep 600").is_empty());
}

#[test]
fn failing_poststart_hook_only_warns() {
    let mut ctx = Ctx::new("poststartfail", &["sh", "-c", "echo ran"]);
    ctx.config["hooks"] = json!({"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}
    ]});
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("poststart"),
        "{}",
        describe(&out)
    );
}
