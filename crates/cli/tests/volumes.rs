//! Volumes and bind mounts with real containers: `-v`, `--mount`,
//! `--volumes-from`, the image's VOLUME list, copy-up, `rm -v`, the
//! `vessel volume` commands, bad specs, concurrency and kill -9. Needs root.

mod engine_common;

use std::process::Stdio;
use std::time::Duration;

use engine_common::{stderr, stdout, Store, IMAGE};

#[test]
fn a_volume_keeps_a_file_across_two_containers_and_a_removal() {
    let s = Store::new();
    assert_eq!(
        s.ok(&["volume", "create", "--label", "team=a", "data"]),
        "data\n"
    );
    s.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept >/data/f",
    ]);
    s.ok(&["rm", "writer"]);
    let out = s.ok(&["run", "--rm", "-v", "data:/data", IMAGE, "cat", "/data/f"]);
    assert_eq!(out, "kept\n");
    // The data is where inspect says, on the host.
    let mp = s.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        std::fs::read_to_string(format!("{}/f", mp.trim())).unwrap(),
        "kept\n"
    );
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Labels"]["team"], "a");
    assert_eq!(
        s.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "data\n"
    );
    assert_eq!(
        s.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "data\n"
    );
    // Creating it again changes nothing; a random name when none is given.
    s.ok(&["volume", "create", "data"]);
    let random = s.ok(&["volume", "create"]);
    assert_eq!(random.trim().len(), 64, "{random}");
    s.ok(&["volume", "rm", "data", random.trim()]);
    assert!(s.volume_names().is_empty());
    s.assert_volumes_consistent();
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let s = Store::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let h = host.path().to_str().unwrap();
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h"),
        IMAGE,
        "sh",
        "-c",
        "cat /h/in; echo back >/h/out",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "back\n"
    );

    // Read-only, by -v and by --mount: the container's write fails with EROFS.
    for flag in [
        vec!["-v".to_owned(), format!("{h}:/h:ro")],
        vec![
            "--mount".to_owned(),
            format!("type=bind,source={h},target=/h,readonly"),
        ],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flag.iter().map(String::as_str));
        args.extend([IMAGE, "sh", "-c", "cat /h/in && echo x >/h/new"]);
        let out = s.vessel(&args);
        assert_ne!(out.status.code(), Some(0), "{flag:?}");
        assert_eq!(stdout(&out), "from host\n");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{flag:?}: {}",
            stderr(&out)
        );
        assert!(!host.path().join("new").exists());
    }

    // A bind of a single file.
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}/in:/etc/motd:ro"),
        IMAGE,
        "cat",
        "/etc/motd",
    ]);
    assert_eq!(out, "from host\n");

    // inspect shows docker's Mounts.
    s.ok(&[
        "create",
        "--name",
        "c",
        "-v",
        &format!("{h}:/h:ro,z"),
        "-v",
        "named:/n",
        IMAGE,
    ]);
    let m: serde_json::Value = serde_json::from_str(&s.inspect("c", "{{json .Mounts}}")).unwrap();
    assert_eq!(m[0]["Type"], "bind");
    assert_eq!(m[0]["Source"], h);
    assert_eq!(m[0]["Destination"], "/h");
    assert_eq!(m[0]["RW"], false);
    assert_eq!(m[0]["Mode"], "ro,z");
    assert_eq!(m[0]["Propagation"], "rprivate");
    assert_eq!(m[1]["Type"], "volume");
    assert_eq!(m[1]["Name"], "named");
    assert_eq!(m[1]["RW"], true);
    s.ok(&["rm", "c"]);
}

#[test]
fn a_new_volume_is_initialised_from_the_image() {
    let s = Store::new();
    s.make_seed_image("localhost/seed");
    // The image's VOLUME makes an anonymous volume filled from /seed, with
    // its owner and mode; a symlink stays a symlink.
    let out = s.ok(&[
        "run", "--name", "a", "localhost/seed", "sh", "-c",
        "stat -c '%u:%g %a' /seed /seed/file; readlink /seed/link; cat /seed/file; echo new >/seed/new",
    ]);
    assert_eq!(out, "33:33 750\n33:33 644\n/etc/passwd\nseeded\n");
    let anon = s.volume_names();
    assert_eq!(anon.len(), 1, "{anon:?}");
    // A named volume mounted there is filled too, once; later content wins.
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/seed",
        "localhost/seed",
        "sh",
        "-c",
        "rm /seed/file; echo mine >/seed/own",
    ]);
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/seed",
        "localhost/seed",
        "ls",
        "/seed",
    ]);
    assert_eq!(
        out, "link\nown\n",
        "no second copy-up into a volume with content"
    );
    // nocopy: an empty volume stays empty.
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "empty:/seed:nocopy",
        "localhost/seed",
        "ls",
        "-A",
        "/seed",
    ]);
    assert_eq!(out, "");
    // --rm removed its anonymous volumes; `a` keeps its own.
    let mut want = vec!["empty".to_owned(), "named".to_owned()];
    want.extend(anon.iter().cloned());
    want.sort();
    assert_eq!(s.volume_names(), want);
    s.assert_volumes_consistent();
}

#[test]
fn rm_v_removes_anonymous_volumes_but_not_named_ones() {
    let s = Store::new();
    for (name, flag) in [("keep", ""), ("drop", "-v")] {
        let before = s.volume_names();
        s.ok(&[
            "run",
            "--name",
            name,
            "-v",
            &format!("named-{name}:/n"),
            "-v",
            "/anon",
            "--mount",
            "type=volume,target=/anon2",
            IMAGE,
            "true",
        ]);
        let with = s.volume_names();
        assert_eq!(with.len(), before.len() + 3, "{with:?}");
        let mut args = vec!["rm"];
        if !flag.is_empty() {
            args.push(flag);
        }
        args.push(name);
        s.ok(&args);
        let after = s.volume_names();
        if flag.is_empty() {
            assert_eq!(after, with, "rm without -v keeps every volume");
        } else {
            let mut want = before.clone();
            want.push("named-drop".to_owned());
            want.sort();
            assert_eq!(after, want, "only drop's two anonymous volumes went");
        }
    }
    // prune: the unused anonymous ones (keep's); -a: every unused one.
    let out = s.ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(s.volume_names(), ["named-drop", "named-keep"]);
    s.ok(&["volume", "prune", "-f", "-a"]);
    assert!(s.volume_names().is_empty());
    s.assert_volumes_consistent();
}

#[test]
fn volumes_from_shares_volumes_and_binds() {
    let s = Store::new();
    let host = tempfile::tempdir().unwrap();
    let h = host.path().to_str().unwrap();
    s.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "-v",
        "/anon",
        "-v",
        &format!("{h}:/h"),
        IMAGE,
        "sh",
        "-c",
        "echo s >/shared/f; echo a >/anon/f; echo h >/h/f",
    ]);
    let out = s.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        IMAGE,
        "cat",
        "/shared/f",
        "/anon/f",
        "/h/f",
    ]);
    assert_eq!(out, "s\na\nh\n");
    let out = s.vessel(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        IMAGE,
        "sh",
        "-c",
        "echo x >/shared/g",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // A user's mount wins over the shared one at the same place.
    let out = s.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "-v",
        "other:/shared",
        IMAGE,
        "ls",
        "-A",
        "/shared",
    ]);
    assert_eq!(out, "");
    // The shared anonymous volume survives the --rm of a borrower and is
    // in use by src.
    let e = s.vessel(&["volume", "rm", "shared"]);
    assert!(stderr(&e).contains("src"), "{}", stderr(&e));
    let e = s.vessel(&["run", "--rm", "--volumes-from", "nosuch", IMAGE, "true"]);
    assert_eq!(e.status.code(), Some(125));
    assert!(stderr(&e).contains("nosuch"), "{}", stderr(&e));
    let e = s.vessel(&["run", "--rm", "--volumes-from", "src:rx", IMAGE, "true"]);
    assert!(stderr(&e).contains("--volumes-from"), "{}", stderr(&e));
}

#[test]
fn removing_a_volume_in_use_is_refused() {
    let s = Store::new();
    s.ok(&[
        "run", "-d", "--name", "busy", "-v", "v1:/v", IMAGE, "sleep", "300",
    ]);
    s.ok(&["create", "--name", "idle", "-v", "v1:/v", IMAGE]);
    let out = s.vessel(&["volume", "rm", "v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("v1")
            && stderr(&out).contains("busy")
            && stderr(&out).contains("idle"),
        "{}",
        stderr(&out)
    );
    // -f does not override the in-use check; prune -a keeps it too.
    assert_eq!(
        s.vessel(&["volume", "rm", "-f", "v1"]).status.code(),
        Some(1)
    );
    s.ok(&["volume", "prune", "-f", "-a"]);
    assert_eq!(s.volume_names(), ["v1"]);
    s.ok(&["rm", "-f", "busy", "idle"]);
    s.ok(&["volume", "rm", "v1"]);
    // A missing volume: an error, unless -f.
    let out = s.vessel(&["volume", "rm", "nosuch"]);
    assert!(
        stderr(&out).contains("No such volume: nosuch"),
        "{}",
        stderr(&out)
    );
    s.ok(&["volume", "rm", "-f", "nosuch"]);
    let out = s.vessel(&["volume", "create", "bad/name"]);
    assert!(
        stderr(&out).contains("Invalid volume name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_specs_are_named_and_leave_nothing() {
    let s = Store::new();
    s.ok(&["run", "--name", "taken", IMAGE, "true"]);
    let cases: &[(&[&str], &str)] = &[
        (&["-v", ":/x"], "-v"),
        (&["-v", "vol:relative"], "-v"),
        (&["-v", "vol:/"], "-v"),
        (
            &["-v", "/nonexistent-host-path-for-vessel:/x"],
            "does not exist",
        ),
        (&["-v", "vol:/x:bogus"], "-v"),
        (&["--mount", "type=tmpfs,source=/x,target=/t"], "--mount"),
        (
            &["--mount", "type=bind,source=/tmp,target=/x,colour=blue"],
            "colour",
        ),
        (&["--mount", "type=volume,target=rel"], "--mount"),
        (
            &["-v", "fresh1:/a", "-v", "fresh2:/a"],
            "duplicate mount point",
        ),
        (
            &["-v", "fresh1:/a", "--tmpfs", "/a"],
            "duplicate mount point",
        ),
        // These fail after the volume was created: it must go again.
        (&["-v", "fresh1:/a", "--name", "taken"], "already in use"),
        (
            &["-v", "fresh1:/a", "-v", "/anon", "-u", "nosuchuser"],
            "nosuchuser",
        ),
    ];
    for (flags, said) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([IMAGE, "true"]);
        let out = s.vessel(&args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(said), "{flags:?}: {}", stderr(&out));
        assert!(
            s.volume_names().is_empty(),
            "{flags:?} left {:?}",
            s.volume_names()
        );
        assert_eq!(
            s.ok(&["ps", "-aq"]).lines().count(),
            1,
            "{flags:?} left a container"
        );
    }
    s.assert_volumes_consistent();
}

#[test]
fn concurrent_runs_and_volume_commands_keep_the_store_whole() {
    let s = Store::new();
    let runs: Vec<_> = (0..12)
        .map(|i| {
            let n = i.to_string();
            s.cmd(&[
                "run",
                "--rm",
                "-v",
                "shared:/s",
                "-v",
                "/anon",
                IMAGE,
                "sh",
                "-c",
                "echo $0 >>/s/log",
                &n,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let creates: Vec<_> = (0..6)
        .map(|_| {
            s.cmd(&["volume", "create", "same"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Removals race with the runs: each either removes an unused `shared`
    // (a later run makes it again) or is refused because it is in use.
    for _ in 0..6 {
        let out = s.vessel(&["volume", "rm", "shared"]);
        let e = stderr(&out);
        assert!(
            out.status.success() || e.contains("in use") || e.contains("No such volume"),
            "{e}"
        );
    }
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for c in creates {
        let out = c.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "same\n", "{}", stderr(&out));
    }
    // --rm took every anonymous volume; `same` exists once.
    let names = s.volume_names();
    assert!(
        names == ["same", "shared"] || names == ["same"],
        "{names:?}"
    );
    s.assert_volumes_consistent();
}

#[test]
fn volume_ls_after_kill_9_of_a_run_is_consistent() {
    let s = Store::new();
    // Kill `vessel run` at different points of creation and while it runs.
    for (round, delay_ms) in [0u64, 5, 20, 60, 150, 400].into_iter().enumerate() {
        let name = format!("k{round}");
        let mut child = s
            .cmd(&[
                "run", "--name", &name, "-v", "named:/n", "-v", "/anon", IMAGE, "sleep", "300",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        s.assert_volumes_consistent();
        // Whatever exists is usable: the container (if it got a record) can
        // be removed with its anonymous volume.
        let _ = s.vessel(&["rm", "-f", "-v", &name]);
        s.assert_volumes_consistent();
    }
    // A container that ran when its CLI died keeps its volumes in use.
    let mut child = s
        .cmd(&[
            "run", "--name", "alive", "-v", "named:/n", IMAGE, "sleep", "300",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while s
        .vessel(&["inspect", "-f", "{{.State.Status}}", "alive"])
        .stdout
        != b"running\n"
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = s.vessel(&["volume", "rm", "named"]);
    assert!(stderr(&out).contains("alive"), "{}", stderr(&out));
    s.ok(&["rm", "-f", "alive"]);
    // Only what a crash before the record leaves can remain: unused
    // volumes, which prune removes.
    s.ok(&["volume", "prune", "-f", "-a"]);
    assert!(s.volume_names().is_empty(), "{:?}", s.volume_names());
    s.assert_volumes_consistent();
    let left: Vec<String> = s
        .mounts()
        .into_iter()
        .filter(|m| m.contains("/containers/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn mount_type_tmpfs_is_a_private_tmpfs_with_its_size_and_mode() {
    let s = Store::new();
    let out = s.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=64k,tmpfs-mode=1770",
        IMAGE,
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; echo x > /scratch/f && cat /scratch/f",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("tmpfs /scratch tmpfs rw") && lines[0].contains("size=64k"),
        "{out}"
    );
    assert_eq!(lines[1], "1770", "{out}");
    assert_eq!(
        lines[2], "x",
        "writable although the root is read-only: {out}"
    );
    // Nothing of it outlives the container: no volume was made.
    assert!(s.volume_names().is_empty());
}
