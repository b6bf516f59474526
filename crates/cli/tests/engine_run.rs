//! `vessel run` in the foreground: output, exit codes (docker's), `--rm`,
//! stdin, terminals, and what each `run` flag does inside the container.
//! Needs root; real containers from the busybox image.

mod engine_common;

use std::io::Write;
use std::process::Stdio;

use engine_common::{stderr, stdout, Store, IMAGE};

#[test]
fn run_rm_echo_and_exit_codes() {
    let s = Store::new();
    let out = s.vessel(&["run", "--rm", IMAGE, "echo", "hello"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "hello\n")
    );

    let out = s.vessel(&["run", "--rm", IMAGE, "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "oops\n", "stderr stays stderr");

    // A command the image does not have: 127, named.
    let out = s.vessel(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    let out = s.vessel(&["run", "--rm", IMAGE, "/no/such/file"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // There but not runnable: 126, with execve's reason.
    for (cmd, why) in [
        ("/etc/passwd", "permission denied"),
        ("/etc", "is a directory"),
    ] {
        let out = s.vessel(&["run", "--rm", IMAGE, cmd]);
        assert_eq!(out.status.code(), Some(126), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{cmd}: {}", stderr(&out));
    }

    // vessel's own errors: 125 with the reason.
    let out = s.vessel(&["run", "--rm", "--cpus", "-1", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("--cpus"), "{}", stderr(&out));
    let out = s.vessel(&["run", "--rm", "--restart", "sometimes", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("--restart"), "{}", stderr(&out));
    let out = s.vessel(&["run", "--rm", "-m", "12x", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("-m"), "{}", stderr(&out));

    assert_eq!(s.ok(&["ps", "-aq"]), "", "--rm left no container");
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
}

#[test]
fn run_keeps_the_container_and_its_log() {
    let s = Store::new();
    let out = s.vessel(&[
        "run",
        "--name",
        "kept",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two >&2; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        s.inspect("kept", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 4"
    );
    let logs = s.vessel(&["logs", "kept"]);
    assert_eq!(
        (stdout(&logs).as_str(), stderr(&logs).as_str()),
        ("one\n", "two\n")
    );
    let logs = s.ok(&["logs", "--tail", "1", "-t", "kept"]);
    assert!(logs.ends_with("Z one\n") || logs.is_empty(), "{logs}");
    // The name is taken until the container is removed.
    let out = s.vessel(&["run", "--name", "kept", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    // start -a runs it again, appending to the log.
    let out = s.vessel(&["start", "-a", "kept"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(s.ok(&["logs", "kept"]), "one\none\n");
    s.ok(&["rm", "kept"]);
    let out = s.vessel(&["logs", "kept"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("No such container: kept"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stdin_with_i_and_a_terminal_with_t() {
    let s = Store::new();
    let mut child = s
        .cmd(&[
            "run",
            "--rm",
            "-i",
            IMAGE,
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "HELLO STDIN\ndone\n");

    // Without -i the container reads nothing (EOF at once).
    let out = s.vessel(&["run", "--rm", IMAGE, "sh", "-c", "cat; echo eof"]);
    assert_eq!(stdout(&out), "eof\n");

    // -t: the process has a terminal; its output (CRLF) comes back.
    let out = s.vessel(&[
        "run",
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "test -t 0 && test -t 1 && tty",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/dev/pts/0\r\n");
}

#[test]
fn run_flags_reach_the_container() {
    let s = Store::new();
    let env_file = s.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let script = "echo $FROM_FILE $A; pwd; id -u; hostname; cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff)'; \
                  ulimit -n; touch /ro 2>/dev/null || echo read-only; mount | grep ' /scratch '";
    let out = s.ok(&[
        "run",
        "--rm",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "A=1",
        "-w",
        "/tmp/work",
        "-u",
        "33:33",
        "--hostname",
        "box",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=512:1024",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "--cap-drop",
        "ALL",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "yes 1");
    assert_eq!(lines[1], "/tmp/work");
    assert_eq!(lines[2], "33");
    assert_eq!(lines[3], "box");
    assert_eq!(
        lines[4], "CapEff:\t0000000000000000",
        "no capabilities: {out}"
    );
    assert_eq!(lines[5], "NoNewPrivs:\t1");
    assert_eq!(lines[6], "512");
    assert_eq!(lines[7], "read-only");
    assert!(
        lines[8].contains("tmpfs") && lines[8].contains("size=1024k"),
        "{out}"
    );

    // --entrypoint replaces the image's; -m and --cpus show in inspect and the cgroup.
    let out = s.ok(&[
        "run",
        "--name",
        "lim",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--entrypoint",
        "cat",
        IMAGE,
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out, "50\n");
    assert_eq!(
        s.inspect(
            "lim",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.Path}}"
        ),
        "67108864 500000000 cat"
    );
    s.ok(&["rm", "lim"]);

    // --init: pid 1 is docker-init (tini), the command its child.
    let out = s.ok(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");

    // --privileged: every capability, and /sys writable.
    let out = s.ok(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert!(
        !out.contains("00000000a80425fb"),
        "more than docker's default set: {out}"
    );

    // The default seccomp profile refuses what docker refuses; unconfined does not.
    let out = s.vessel(&["run", "--rm", IMAGE, "unshare", "-U", "true"]);
    assert_ne!(out.status.code(), Some(0), "unshare is denied by default");
    let out = s.vessel(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "--cap-add",
        "SYS_ADMIN",
        IMAGE,
        "unshare",
        "-U",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn diff_and_export_show_the_containers_files() {
    let s = Store::new();
    s.ok(&[
        "run",
        "--name",
        "changed",
        IMAGE,
        "sh",
        "-c",
        "echo x > /tmp/new; rm /etc/group; echo y >> /etc/passwd",
    ]);
    let diff = s.ok(&["diff", "changed"]);
    for line in ["A /tmp/new", "D /etc/group", "C /etc/passwd", "C /etc"] {
        assert!(
            diff.lines().any(|l| l == line),
            "{line} missing from:\n{diff}"
        );
    }
    let tar = s.dir.path().join("out.tar");
    s.ok(&["export", "-o", tar.to_str().unwrap(), "changed"]);
    let list = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&tar)
        .output()
        .unwrap();
    let list = stdout(&list);
    assert!(
        list.lines()
            .any(|l| l.ends_with(" ./tmp/new") || l.ends_with(" tmp/new")),
        "{list}"
    );
    assert!(
        !list.contains("etc/group"),
        "the deleted file is not exported"
    );
    assert!(
        list.lines().any(|l| l.contains("bin/sh -> busybox")),
        "symlinks stay symlinks"
    );
    let out = s.vessel(&["export", "-o", tar.to_str().unwrap(), "nope"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("No such container: nope"));
    s.ok(&["rm", "changed"]);
}

#[test]
fn commit_makes_an_image_of_the_containers_changes() {
    let s = Store::new();
    s.ok(&[
        "run",
        "--name",
        "src",
        "-w",
        "/data",
        "-e",
        "KEPT=yes",
        IMAGE,
        "sh",
        "-c",
        "echo committed > /data/file; rm /etc/group",
    ]);
    let id = s.ok(&["commit", "-m", "my change", "src", "localhost/committed:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    // The new image has the file, not the deleted one, and the container's config.
    let out = s.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "localhost/committed:1",
        "-c",
        "cat file; test -e /etc/group || echo no-group; echo $KEPT",
    ]);
    assert_eq!(out, "committed\nno-group\nyes\n");
    let history = s.ok(&["image", "history", "localhost/committed:1"]);
    assert!(history.contains("my change"), "{history}");
    // A running container is committed too (paused meanwhile) and keeps running.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        IMAGE,
        "sh",
        "-c",
        "echo live > /live; sleep 100",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.ok(&["diff", "live"]).contains("A /live") {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote /live"
        );
    }
    s.ok(&["commit", "live", "localhost/live"]);
    assert_eq!(s.inspect("live", "{{.State.Status}}"), "running");
    assert_eq!(
        s.ok(&["run", "--rm", "localhost/live", "cat", "/live"]),
        "live\n"
    );
    let out = s.vessel(&["commit", "nope", "localhost/x"]);
    assert_eq!(out.status.code(), Some(125));
    s.ok(&["rm", "-f", "live", "src"]);
}

#[test]
fn a_resized_terminal_reaches_the_container() {
    let s = Store::new();
    let script = "while :; do stty size; read x || break; done; echo bye";
    follows_resizes(&s, &["run", "--rm", "-it", IMAGE, "sh", "-c", script]);
    s.ok(&["run", "-d", "--name", "resize", IMAGE, "sleep", "60"]);
    follows_resizes(&s, &["exec", "-it", "resize", "sh", "-c", script]);
    s.ok(&["rm", "-f", "resize"]);
}

/// Run `args` (whose process prints its terminal size after each line of
/// input until end of input) on a terminal of ours, resize it, and check the
/// process sees the new size.
fn follows_resizes(s: &Store, args: &[&str]) {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = s
        .cmd(args)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let (tx, rx) = mpsc::channel();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |want: &str, poke: &mut dyn FnMut()| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut poked = Instant::now() - Duration::from_secs(1);
        while !seen.contains(want) {
            let tail: String = seen
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            assert!(
                Instant::now() < deadline,
                "never saw {want:?}; the output begins {tail:?}"
            );
            if poked.elapsed() >= Duration::from_millis(500) {
                poke();
                poked = Instant::now();
            }
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.push_str(&String::from_utf8_lossy(&b));
            }
        }
    };
    wait_for("24 80", &mut || {});
    // Resize the outer terminal and tell vessel, as a terminal emulator
    // does; each newline makes the container print its size again.
    vessel_engine::tty::set_window_size(&master.as_fd(), (30, 100));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    wait_for("30 100", &mut || {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH);
        let _ = master.write_all(b"\n");
    });
    // Ctrl-D: end of input for the container's `read`.
    master.write_all(b"\x04").unwrap();
    wait_for("bye", &mut || {});
    let status = child.wait().unwrap();
    assert!(status.success(), "{status} {seen:?}");
}
