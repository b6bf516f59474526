//! Many vessel processes over one store at once, and vessel killed in the
//! middle of a removal: the store stays consistent. Needs root.

mod engine_common;

use std::collections::BTreeSet;
use std::time::Duration;

use engine_common::{stderr, stdout, Store, IMAGE};

#[test]
fn fifty_concurrent_runs_from_one_image() {
    let s = Store::new();
    let children: Vec<_> = (0..50)
        .map(|i| {
            let n = i.to_string();
            let name = format!("c{i}");
            let keep = i % 2 == 0; // half keep their container, half use --rm
            let mut args = vec!["run", "--name", &name];
            if !keep {
                args.push("--rm");
            }
            args.extend([
                IMAGE,
                "sh",
                "-c",
                "echo $0; hostname >/tmp/h; cat /tmp/h >/dev/null",
                &n,
            ]);
            (
                i,
                keep,
                s.cmd(&args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for (i, _, child) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "run {i}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("{i}\n"),
            "run {i} printed its own number"
        );
    }
    // Exactly the kept containers exist, each exited 0, with unique names and ids.
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&s.ok(&["ps", "-a", "--format", "json"])).unwrap();
    assert_eq!(listed.len(), 25, "{listed:?}");
    let names: BTreeSet<String> = listed
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = (0..50)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("c{i}"))
        .collect();
    assert_eq!(names, want);
    for c in &listed {
        assert_eq!(c["State"], "exited");
        assert_eq!(c["ExitCode"], 0);
    }
    // They all share the image's one unpacked layer; removal of all of them works.
    let ids: Vec<String> = listed
        .iter()
        .map(|c| c["Id"].as_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["rm"];
    args.extend(ids.iter().map(String::as_str));
    s.ok(&args);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
}

#[test]
fn rm_killed_midway_leaves_a_consistent_store() {
    let s = Store::new();
    for round in 0..6u64 {
        let name = format!("victim{round}");
        s.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "100"]);
        let mut rm = s
            .cmd(&["rm", "-f", &name])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Different points of the removal each round (kill, unmount, delete).
        std::thread::sleep(Duration::from_millis(5 + round * 15));
        let _ = rm.kill();
        let _ = rm.wait();
        // Whatever state it was left in, vessel tells a consistent story and
        // a second removal finishes the job.
        let out = s.vessel(&["inspect", "-f", "{{.State.Status}}", &name]);
        match out.status.code() {
            Some(0) => {
                s.ok(&["rm", "-f", &name]);
            }
            _ => assert!(
                stderr(&out).contains("No such container"),
                "{}",
                stderr(&out)
            ),
        }
        assert!(s.vessel(&["inspect", &name]).status.code() != Some(0));
        // The name is free again.
        s.ok(&["run", "--rm", "--name", &name, IMAGE, "true"]);
    }
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
}
