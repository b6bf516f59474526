//! Lifecycle of vessel-runtime containers: create/start/state/kill/delete,
//! list, run exit codes, and every lifecycle error case of the runtime spec.

mod common;

use common::{describe, Ctx};
use serde_json::Value;

#[test]
fn create_start_kill_delete() {
    let ctx = Ctx::new("life", &["sleep", "1000"]);
    ctx.create_ok();
    let st = ctx.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], ctx.id());
    let pid = st["pid"].as_i64().expect("created container has a pid");
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        st["bundle"].as_str().unwrap(),
        std::fs::canonicalize(&ctx.bundle)
            .unwrap()
            .to_str()
            .unwrap()
    );

    ctx.rt_ok(&["start", ctx.id()]);
    let st = ctx.state();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid));
    // The init becomes the user program (right after `start` returned).
    Ctx::wait_until("the init to exec sleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
    });

    let err = ctx.rt_err(&["start", ctx.id()]);
    assert!(err.contains("running"), "{err}");

    ctx.rt_ok(&["kill", ctx.id(), "KILL"]);
    ctx.wait_status("stopped");

    let err = ctx.rt_err(&["kill", ctx.id(), "KILL"]);
    assert!(err.contains("stopped"), "{err}");

    ctx.rt_ok(&["delete", ctx.id()]);
    assert!(!ctx.root.join(ctx.id()).exists());
    assert!(!ctx.cgroup_dir("memory").exists());
    let err = ctx.rt_err(&["state", ctx.id()]);
    assert!(
        err.contains(ctx.id()) && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn kill_defaults_to_sigterm() {
    // A pid-1 init only gets signals it handles: the shell traps TERM.
    let ctx = Ctx::new(
        "term",
        &["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    );
    ctx.start_ok();
    ctx.rt_ok(&["kill", ctx.id()]);
    ctx.wait_status("stopped");
}

#[test]
fn delete_running_needs_force() {
    let ctx = Ctx::new("delrun", &["sleep", "1000"]);
    ctx.start_ok();
    let pid = ctx.pid();
    let err = ctx.rt_err(&["delete", ctx.id()]);
    assert!(err.contains("running") && err.contains("--force"), "{err}");
    assert_eq!(ctx.state()["status"], "running");
    ctx.rt_ok(&["delete", "--force", ctx.id()]);
    assert!(!ctx.root.join(ctx.id()).exists());
    Ctx::wait_until("the init to be gone", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
    assert!(!ctx.cgroup_dir("memory").exists());
}

#[test]
fn delete_created_container_kills_its_init() {
    let ctx = Ctx::new("delcreated", &["sleep", "1000"]);
    ctx.create_ok();
    let pid = ctx.pid();
    ctx.rt_ok(&["delete", ctx.id()]);
    Ctx::wait_until("the init to be gone", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
    assert!(!ctx.root.join(ctx.id()).exists());
}

#[test]
fn duplicate_id_fails() {
    let ctx = Ctx::new("dup", &["sleep", "1000"]);
    ctx.create_ok();
    let out = ctx.create_id(ctx.id());
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(ctx.id()) && err.contains("already exists"),
        "{err}"
    );
    // The first container is untouched.
    assert_eq!(ctx.state()["status"], "created");
}

#[test]
fn unknown_id_is_named() {
    let ctx = Ctx::new("unknown", &["true"]);
    for cmd in ["state", "start", "kill", "delete", "pause", "resume", "ps"] {
        let err = ctx.rt_err(&[cmd, "no-such-container-xyz"]);
        assert!(
            err.contains("no-such-container-xyz") && err.contains("does not exist"),
            "{cmd}: {err}"
        );
    }
    let out = ctx.rt(&["exec", "no-such-container-xyz", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-container-xyz"));
}

#[test]
fn invalid_id_is_rejected() {
    let ctx = Ctx::new("badid", &["true"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let err = ctx.rt_err(&["create", "--bundle", bundle, "../escape"]);
    assert!(err.contains("../escape"), "{err}");
    assert!(!ctx.tmp.path().join("escape").exists());
}

#[test]
fn list_table_and_json() {
    let ctx = Ctx::new("list", &["sleep", "1000"]);
    let second = ctx.other_id("b");
    ctx.start_ok();
    let out = ctx.create_id(&second);
    assert!(out.status.success(), "{}", describe(&out));

    let table = ctx.rt_ok(&["list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("ID") && header.contains("STATUS"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{} ", ctx.id())))
        .unwrap_or_else(|| panic!("no row for {}:\n{table}", ctx.id()));
    assert!(row.contains("running"), "{row}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{second} ")))
        .unwrap_or_else(|| panic!("no row for {second}:\n{table}"));
    assert!(row.contains("created"), "{row}");

    let json: Value = serde_json::from_str(&ctx.rt_ok(&["list", "--format", "json"])).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{json}");
    let first = arr.iter().find(|c| c["id"] == ctx.id()).unwrap();
    assert_eq!(first["status"], "running");
    assert_eq!(first["pid"].as_i64(), Some(ctx.pid() as i64));
    let b = arr.iter().find(|c| c["id"] == second.as_str()).unwrap();
    assert_eq!(b["status"], "created");

    let quiet = ctx.rt_ok(&["list", "-q"]);
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort();
    let mut want = vec![ctx.id(), second.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_of_an_empty_root_is_empty_json() {
    let ctx = Ctx::new("listempty", &["true"]);
    let json: Value = serde_json::from_str(&ctx.rt_ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json, serde_json::json!([]));
}

#[test]
fn run_propagates_exit_code() {
    let mut ctx = Ctx::new("exit3", &["sh", "-c", "exit 3"]);
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    // run deletes the container afterwards.
    assert!(!ctx.root.join(ctx.id()).exists());
    assert!(!ctx.cgroup_dir("memory").exists());

    ctx.args(&["true"]);
    assert_eq!(ctx.run().status.code(), Some(0));
}

#[test]
fn run_killed_by_signal_is_128_plus_n() {
    // Without a pid namespace the shell is not a pid-1 init, so a signal it
    // sends itself kills it.
    let mut ctx = Ctx::new("sig", &["sh", "-c", "kill -USR1 $$; sleep 5"]);
    ctx.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(128 + 10), "{}", describe(&out));
}

#[test]
fn run_of_a_container_killed_from_outside_is_137() {
    let ctx = Ctx::new("sigkill", &["sleep", "1000"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap().to_owned();
    let id = ctx.id().to_owned();
    let mut cmd = ctx.cmd();
    cmd.args(["run", "--bundle", &bundle, &id]);
    let dir = ctx.tmp.path().to_owned();
    let runner = std::thread::spawn(move || common::output_via_files(&mut cmd, &dir));
    Ctx::wait_until("the container to run", || {
        ctx.rt(&["state", ctx.id()]).status.success() && ctx.state()["status"] == "running"
    });
    ctx.rt_ok(&["kill", ctx.id(), "KILL"]);
    let out = runner.join().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    assert!(!ctx.root.join(ctx.id()).exists());
}

#[test]
fn run_prints_the_programs_output() {
    let ctx = Ctx::new("out", &["sh", "-c", "echo to-stdout; echo to-stderr >&2"]);
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-stdout\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
}

#[test]
fn run_detached_keeps_running() {
    let ctx = Ctx::new("detach", &["sleep", "1000"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let out = ctx.rt(&["run", "-d", "--bundle", bundle, ctx.id()]);
    assert!(out.status.success(), "{}", describe(&out));
    let st = ctx.state();
    assert_eq!(st["status"], "running", "{st}");
    ctx.rt_ok(&["kill", ctx.id(), "KILL"]);
    ctx.wait_status("stopped");
    ctx.rt_ok(&["delete", ctx.id()]);
}

#[test]
fn pid_file_matches_state() {
    let ctx = Ctx::new("pidfile", &["sleep", "1000"]);
    ctx.write_config();
    let pid_file = ctx.path("init.pid");
    let bundle = ctx.bundle.to_str().unwrap();
    ctx.rt_ok(&[
        "create",
        "--bundle",
        bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
        ctx.id(),
    ]);
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim().parse::<i32>().unwrap(), ctx.pid());
}

#[test]
fn start_of_stopped_container_fails() {
    let ctx = Ctx::new("startstopped", &["true"]);
    ctx.start_ok();
    ctx.wait_status("stopped");
    let err = ctx.rt_err(&["start", ctx.id()]);
    assert!(err.contains("stopped"), "{err}");
    ctx.rt_ok(&["delete", ctx.id()]);
}
