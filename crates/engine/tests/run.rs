//! The first end-to-end path: a busybox image loaded from a docker-save
//! archive, containers created, run in the foreground with their output
//! captured, exit codes recorded, and removed without a trace. Needs root.

mod common;

use std::path::Path;

use common::{args, capture, engine, require_root, run_fg, start_fg};
use vessel_engine::{CreateOptions, EngineError, Status};

fn opts(cmd: &[&str]) -> CreateOptions {
    CreateOptions {
        image: "localhost/busybox".into(),
        cmd: args(cmd),
        ..Default::default()
    }
}

fn cgroup_dirs(id: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path().join("vessel").join(id);
        if p.exists() {
            out.push(p);
        }
    }
    out
}

#[test]
fn echo_hello_and_exit_codes_are_recorded() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());

    let (stdio, out) = capture(tmp.path(), "out1");
    let (id, code) = run_fg(&engine, &opts(&["echo", "hello"]), stdio, false).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\n");
    assert_eq!(code, 0);
    let r = engine.inspect(&id).unwrap();
    assert_eq!(r.state.status, Status::Exited);
    assert_eq!(r.state.exit_code, Some(0));
    assert!(r.state.started_at.is_some() && r.state.finished_at.is_some());
    assert_eq!(r.state.pid, 0);

    let (stdio, _) = capture(tmp.path(), "out2");
    let (id3, code) = run_fg(&engine, &opts(&["sh", "-c", "exit 3"]), stdio, false).unwrap();
    assert_eq!(code, 3);
    assert_eq!(engine.inspect(&id3).unwrap().state.exit_code, Some(3));

    // An exited container starts again; stderr is captured too.
    let (stdio, out) = capture(tmp.path(), "out3");
    let code = start_fg(&engine, &id, stdio).unwrap();
    assert_eq!(
        (code, std::fs::read_to_string(&out).unwrap().as_str()),
        (0, "hello\n")
    );
    let (stdio, out) = capture(tmp.path(), "out4");
    let (_, code) = run_fg(
        &engine,
        &opts(&["sh", "-c", "echo oops >&2; exit 1"]),
        stdio,
        true,
    )
    .unwrap();
    assert_eq!(
        (code, std::fs::read_to_string(&out).unwrap().as_str()),
        (1, "oops\n")
    );

    assert_eq!(
        engine.list().unwrap().len(),
        2,
        "--rm removed its container"
    );
    for r in engine.list().unwrap() {
        engine.remove(&r.name, false).unwrap();
    }
    assert!(engine.list().unwrap().is_empty());
}

#[test]
fn env_workdir_and_user_come_from_the_image() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let script = "id -u; id -g; id -G; pwd; echo $GREETING; echo $HOME; hostname";
    let (stdio, out) = capture(tmp.path(), "out");
    let (id, code) = run_fg(&engine, &opts(&["sh", "-c", script]), stdio, true).unwrap();
    assert_eq!(code, 0);
    let hostname = &id[..12];
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("33\n33\n33 29\n/app\nfrom-image\n/var/www\n{hostname}\n")
    );

    // The user's options win over the image's.
    let o = CreateOptions {
        env: args(&["GREETING=from-user"]),
        workdir: Some("/tmp".into()),
        user: Some("0:0".into()),
        hostname: Some("box".into()),
        name: Some("custom".into()),
        ..opts(&["sh", "-c", script])
    };
    let (stdio, out) = capture(tmp.path(), "out2");
    let (_, code) = run_fg(&engine, &o, stdio, true).unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "0\n0\n0\n/tmp\nfrom-user\n/var/www\nbox\n".replace("/var/www", "/root")
    );
}

#[test]
fn removal_leaves_no_mount_cgroup_or_state() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let r = engine
        .create(&CreateOptions {
            name: Some("doomed".into()),
            ..opts(&["sh", "-c", "echo x > /tmp/written"])
        })
        .unwrap();
    let rootfs = engine.containers().rootfs(&r.id);
    assert!(vessel_engine::rootfs::is_mountpoint(&rootfs).unwrap());
    assert!(engine.containers().dir(&r.id).join("config.json").is_file());
    assert_eq!(
        engine.inspect("doomed").unwrap().state.status,
        Status::Created
    );
    let (stdio, _) = capture(tmp.path(), "out");
    assert_eq!(start_fg(&engine, "doomed", stdio).unwrap(), 0);
    let upper = engine.images().snapshots().upper_dir(&r.id);
    assert!(
        upper.join("tmp/written").exists(),
        "the write landed in the container's layer"
    );
    assert!(
        cgroup_dirs(&r.id).is_empty(),
        "the monitor deleted the cgroup after the exit"
    );

    engine.remove("doomed", false).unwrap();
    assert!(!vessel_engine::rootfs::is_mountpoint(&rootfs).unwrap());
    assert!(!engine.containers().dir(&r.id).exists());
    assert!(!upper.exists(), "writable layer removed");
    assert!(!engine.runtime_root().join(&r.id).exists());
    assert!(cgroup_dirs(&r.id).is_empty());
    assert!(matches!(
        engine.inspect("doomed"),
        Err(EngineError::NotFound(_))
    ));
    // The name is free again.
    engine
        .create(&CreateOptions {
            name: Some("doomed".into()),
            ..opts(&["true"])
        })
        .map(|r| engine.remove(&r.id, false).unwrap())
        .unwrap();
}

fn assert_nothing_left(engine: &vessel_engine::Engine, root: &Path) {
    assert!(engine.list().unwrap().is_empty());
    let active: Vec<_> = std::fs::read_dir(root.join("root/snapshots/active"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(active.is_empty(), "{active:?}");
    // The run root's netns directory is mounted on itself once, for good
    // (as ip netns does with /run/netns): the store's, not a leftover.
    let netns_dir = root.join("run/netns").display().to_string();
    let left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root.display().to_string()) && *m != netns_dir)
        .map(String::from)
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    let _ = nix::mount::umount2(netns_dir.as_str(), nix::mount::MntFlags::MNT_DETACH);
}

#[test]
fn bad_requests_fail_clearly_and_leave_nothing() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());

    let e = engine
        .create(&CreateOptions {
            image: "localhost/nope".into(),
            ..opts(&["true"])
        })
        .unwrap_err();
    assert!(
        e.chain().join(": ").contains("localhost/nope"),
        "{:?}",
        e.chain()
    );
    let e = engine
        .create(&CreateOptions {
            user: Some("alice".into()),
            ..opts(&["true"])
        })
        .unwrap_err();
    assert!(e.to_string().contains("alice"), "{e}");
    let e = engine
        .create(&CreateOptions {
            name: Some("bad name".into()),
            ..opts(&["true"])
        })
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidName(_)));
    assert_nothing_left(&engine, tmp.path());

    let first = engine
        .create(&CreateOptions {
            name: Some("taken".into()),
            ..opts(&["true"])
        })
        .unwrap();
    let e = engine
        .create(&CreateOptions {
            name: Some("taken".into()),
            ..opts(&["true"])
        })
        .unwrap_err();
    assert!(
        matches!(e, EngineError::NameInUse { ref id, .. } if *id == first.id),
        "{e}"
    );
    engine.remove("taken", false).unwrap();
    assert_nothing_left(&engine, tmp.path());

    // A command that is not in the image: the start fails with the runtime's reason.
    let (stdio, _) = capture(tmp.path(), "out");
    let e = run_fg(&engine, &opts(&["/no/such/program"]), stdio, true).unwrap_err();
    let text = e.chain().join(": ");
    assert!(text.contains("/no/such/program"), "{text}");
    assert_eq!(e.exit_code(), 127, "{text}");
    let (stdio, _) = capture(tmp.path(), "out");
    let e = run_fg(&engine, &opts(&["nosuchcmd"]), stdio, true).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{:?}", e.chain());
    assert_nothing_left(&engine, tmp.path());
}
