//! Detached containers: a monitor per container that outlives the CLI,
//! logs, exec, stop/kill/wait/restart, pause, restart policies, rename,
//! top/stats, and the truth after every monitor is killed. Needs root.

mod engine_common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use engine_common::{stderr, stdout, Store, IMAGE};

/// Wait (up to a generous bound, not a timing assertion) for `cond`.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn detached_outlives_the_cli_with_logs_and_exec() {
    let s = Store::new();
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    // The CLI has exited; the container runs and its output is logged.
    eventually("the log has the first line", || {
        s.ok(&["logs", "web"]) == "started\n"
    });
    assert_eq!(
        s.inspect("web", "{{.State.Status}} {{.State.Running}}"),
        "running true"
    );
    let ps = s.ok(&["ps"]);
    assert!(
        ps.contains(&id[..12]) && ps.contains("Up ") && ps.contains("web"),
        "{ps}"
    );

    // exec: output, exit code, env, cwd, user, stdin.
    assert_eq!(
        s.ok(&["exec", "web", "sh", "-c", "echo $X; pwd; id -u",]),
        "\n/\n0\n"
    );
    let out = s.vessel(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "33",
        "web",
        "sh",
        "-c",
        "echo $X; pwd; id -u; exit 5",
    ]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(5), "1\n/tmp\n33\n")
    );
    let mut child = s
        .cmd(&["exec", "-i", "web", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through exec\n")
        .unwrap();
    assert_eq!(stdout(&child.wait_with_output().unwrap()), "through exec\n");
    let out = s.vessel(&["exec", "-t", "web", "tty"]);
    assert_eq!(stdout(&out), "/dev/pts/0\r\n", "{}", stderr(&out));
    let out = s.vessel(&["exec", "web", "no-such-command"]);
    assert_ne!(out.status.code(), Some(0));

    // top and stats see the container's processes.
    let top = s.ok(&["top", "web"]);
    assert!(
        top.starts_with("UID") && top.contains("sh -c echo started"),
        "{top}"
    );
    let stats = s.ok(&["stats", "--no-stream", "--format", "json", "web"]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(v[0]["PIDs"].as_u64().unwrap() >= 1, "{stats}");

    // pause freezes it; unpause thaws it.
    s.ok(&["pause", "web"]);
    assert_eq!(
        s.inspect("web", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert!(s.ok(&["ps"]).contains("(Paused)"));
    let out = s.vessel(&["exec", "web", "true"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "no exec into a paused container"
    );
    s.ok(&["unpause", "web"]);
    assert_eq!(s.inspect("web", "{{.State.Status}}"), "running");

    // rm without -f refuses a running container.
    let out = s.vessel(&["rm", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));

    // stop: SIGTERM, the trap runs, exit code recorded, wait returns it.
    s.ok(&["stop", "web"]);
    assert_eq!(
        s.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert_eq!(s.ok(&["wait", "web"]), "7\n");
    assert_eq!(s.ok(&["logs", "web"]), "started\nbye\n");
    assert!(!s.ok(&["ps"]).contains("web"), "ps hides exited containers");
    assert!(s.ok(&["ps", "-a"]).contains("Exited (7)"));

    // rename, then the old name is free.
    s.ok(&["rename", "web", "web2"]);
    assert_eq!(s.inspect("web2", "{{.Name}}"), "/web2");
    let out = s.vessel(&["inspect", "web"]);
    assert_eq!(out.status.code(), Some(1));
    s.ok(&["rm", "web2"]);
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
}

#[test]
fn wait_kill_logs_follow_and_restart() {
    let s = Store::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.5; echo done; exit 3",
    ]);
    // logs -f follows until the container exits.
    let out = s.ok(&["logs", "-f", "w"]);
    assert_eq!(out, "done\n");
    assert_eq!(s.ok(&["wait", "w"]), "3\n");

    // kill: SIGKILL by default, 128+9 recorded; stop of an exited container is fine.
    s.ok(&["run", "-d", "--name", "k", IMAGE, "sleep", "100"]);
    s.ok(&["kill", "k"]);
    assert_eq!(s.ok(&["wait", "k"]), "137\n");
    s.ok(&["stop", "k"]);
    let out = s.vessel(&["kill", "k"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kill of an exited container fails"
    );
    let out = s.vessel(&["kill", "-s", "NOPE", "w"]);
    assert_eq!(out.status.code(), Some(1));

    // restart runs it again; start of a running container fails.
    s.ok(&["restart", "-t", "1", "k"]);
    assert_eq!(s.inspect("k", "{{.State.Status}}"), "running");
    let out = s.vessel(&["start", "k"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    s.ok(&["rm", "-f", "k", "w"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn restart_policy_and_rm_in_the_background() {
    let s = Store::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo try; exit 1",
    ]);
    assert_eq!(s.ok(&["wait", "flaky"]), "1\n");
    eventually("the policy gave up", || {
        s.inspect("flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
    });
    assert_eq!(
        s.ok(&["logs", "flaky"]),
        "try\ntry\ntry\n",
        "first run + 2 restarts"
    );

    // --rm with -d: the monitor removes the container when it exits.
    s.ok(&["run", "-d", "--rm", "--name", "gone", IMAGE, "true"]);
    eventually("--rm removed it", || {
        s.vessel(&["inspect", "gone"]).status.code() == Some(1)
    });

    // always: restarts until stopped by the user.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    eventually("restarted at least once", || {
        s.inspect("again", "{{.RestartCount}}") != "0"
    });
    s.ok(&["stop", "-t", "1", "again"]);
    assert_eq!(s.inspect("again", "{{.State.Status}}"), "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.inspect("again", "{{.State.Status}}"),
        "exited",
        "no restart after stop"
    );
    s.ok(&["rm", "flaky", "again"]);
}

#[test]
fn ps_tells_the_truth_after_every_monitor_is_killed() {
    let s = Store::new();
    s.ok(&["run", "-d", "--name", "orphan", IMAGE, "sleep", "100"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "dies",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.3",
    ]);
    let monitor = |c: &str| s.inspect(c, "{{json .State}}");
    let _ = monitor("orphan");
    // Simulated host crash: kill -9 every monitor (found by their lock).
    for c in ["orphan", "dies"] {
        let id = s.inspect(c, "{{.Id}}");
        let lock = s.root().join("containers").join(&id).join("monitor.lock");
        let holders = std::process::Command::new("fuser")
            .arg(&lock)
            .output()
            .unwrap();
        for pid in String::from_utf8_lossy(&holders.stdout).split_whitespace() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(
                    pid.trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .unwrap(),
                ),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
    }
    // The container whose process still runs is still running (unmonitored);
    // the one whose process ended is exited with 255, as docker records it.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(s.inspect("orphan", "{{.State.Status}}"), "running");
    assert_eq!(
        s.inspect("dies", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    // stop and rm still work without a monitor.
    s.ok(&["stop", "-t", "1", "orphan"]);
    assert_eq!(
        s.inspect("orphan", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    s.ok(&["rm", "orphan", "dies"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
}
