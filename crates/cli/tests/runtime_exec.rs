//! `exec`: another process in a live container.

mod common;

use common::{describe, status_field, Ctx};
use serde_json::json;

fn running(test: &str) -> Ctx {
    let ctx = Ctx::new(test, &["sleep", "1000"]);
    ctx.start_ok();
    ctx
}

#[test]
fn exec_prints_and_propagates_the_exit_code() {
    let ctx = running("exec");
    assert_eq!(ctx.exec_ok(&["echo", "hi"]), "hi\n");
    let out = ctx.rt(&[
        "exec",
        ctx.id(),
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // The container is unaffected.
    assert_eq!(ctx.state()["status"], "running");
}

#[test]
fn exec_env_cwd_and_user() {
    let ctx = running("execopts");
    let out = ctx.exec_ok(&[
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; echo $PATH",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["bar", "/tmp", "1000", "1001"], "{out}");
    // The container's own environment is kept.
    assert!(lines[4].contains("/bin"), "{out}");
}

#[test]
fn exec_process_file() {
    let ctx = running("execproc");
    let file = ctx.path("process.json");
    std::fs::write(
        &file,
        json!({
            "args": ["sh", "-c", "echo $GREETING; pwd; id -u; cat /proc/self/status"],
            "env": ["PATH=/bin", "GREETING=hello"],
            "cwd": "/etc",
            "user": {"uid": 33, "gid": 33},
            "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        })
        .to_string(),
    )
    .unwrap();
    let out = ctx.exec_ok(&["--process", file.to_str().unwrap()]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello"));
    assert_eq!(lines.next(), Some("/etc"));
    assert_eq!(lines.next(), Some("33"));
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000020");
}

#[test]
fn exec_detached_with_pid_file() {
    let ctx = running("execd");
    let pid_file = ctx.path("exec.pid");
    ctx.exec_ok(&[
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "sleep",
        "999",
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\0999\0");
    let procs = ctx.cgroup_file("pids", "cgroup.procs");
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let pids: serde_json::Value =
        serde_json::from_str(&ctx.rt_ok(&["ps", "--format", "json", ctx.id()])).unwrap();
    assert!(pids.as_array().unwrap().iter().any(|p| p == pid), "{pids}");
}

#[test]
fn exec_joins_the_containers_namespaces_and_cgroup() {
    let ctx = running("execns");
    let init = ctx.pid();
    let out = ctx.exec_ok(&[
        "sh",
        "-c",
        "echo $$; for n in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup; ps -o pid,args",
    ]);
    let mut lines = out.lines();
    let inner_pid: i32 = lines.next().unwrap().parse().unwrap();
    assert!(
        inner_pid > 1 && inner_pid < 100,
        "not in the container's pid namespace: {out}"
    );
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        let want = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        let got = lines.next().unwrap();
        assert_eq!(got, want.to_str().unwrap(), "{ns} namespace differs");
    }
    // With a cgroup namespace, the container's cgroup is its root.
    assert!(out.contains(":memory:/\n"), "{out}");
    // pid 1 is the container's sleep.
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "1000"]),
        "{out}"
    );
}

#[test]
fn exec_into_a_stopped_container() {
    let ctx = Ctx::new("execstopped", &["true"]);
    ctx.start_ok();
    ctx.wait_status("stopped");
    let err = ctx.rt_err(&["exec", ctx.id(), "echo", "hi"]);
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn exec_of_a_missing_program_fails_clearly() {
    let ctx = running("execmissing");
    let out = ctx.rt(&["exec", ctx.id(), "no-such-program"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-program"), "{err}");
    assert_eq!(ctx.state()["status"], "running");
    // Nothing of the failed exec stays in the container.
    let pids: serde_json::Value =
        serde_json::from_str(&ctx.rt_ok(&["ps", "--format", "json", ctx.id()])).unwrap();
    assert_eq!(pids.as_array().unwrap().len(), 1, "{pids}");
}

#[test]
fn exec_sees_the_containers_filesystem() {
    let ctx = running("execfs");
    std::fs::write(ctx.rootfs().join("etc/only-in-container"), "yes\n").unwrap();
    assert_eq!(ctx.exec_ok(&["cat", "/etc/only-in-container"]), "yes\n");
    ctx.exec_ok(&["sh", "-c", "echo made > /tmp/by-exec"]);
    assert_eq!(
        std::fs::read_to_string(ctx.rootfs().join("tmp/by-exec")).unwrap(),
        "made\n"
    );
}
