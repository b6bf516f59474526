//! `vessel cp` with real containers, running and stopped: both ways, tar
//! streams, docker's landing rules, ownership, volumes, and symlinks in the
//! container that try to make cp read or write host files. Needs root.

mod engine_common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use engine_common::{stderr, Store, IMAGE};

/// A container `c` with files, a volume, and traps: `/d/escape` points at
/// a host directory, `/d/secret` at a host file, `/rootlink` at `/`.
fn setup(s: &Store, host: &Path, run: bool) {
    let script = format!(
        "mkdir -p /d/sub && echo a >/d/a && echo b >/d/sub/b && chown 33:33 /d/sub/b && chmod 640 /d/sub/b \
         && ln -s {h}/target /d/escape && ln -s {h}/secret /d/secret && ln -s / /rootlink \
         && echo v >/vol/v && {tail}",
        h = host.display(),
        tail = if run { "sleep 300" } else { "true" }
    );
    let mut args = vec!["run", "--name", "c", "-v", "cpvol:/vol"];
    if run {
        args.push("-d");
    }
    args.extend([IMAGE, "sh", "-c", &script]);
    s.ok(&args);
}

fn both_states(check: impl Fn(&Store, &Path)) {
    for run in [true, false] {
        let s = Store::new();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(host.path().join("target")).unwrap();
        std::fs::write(host.path().join("secret"), "HOST SECRET\n").unwrap();
        setup(&s, host.path(), run);
        let state = s.inspect("c", "{{.State.Status}}");
        assert_eq!(state, if run { "running" } else { "exited" });
        check(&s, host.path());
        // Nothing the copies mounted is left on the host.
        let mounts = s.mounts();
        assert!(!mounts.iter().any(|m| m.contains("/rootfs/")), "{mounts:?}");
    }
}

#[test]
fn copy_out_of_a_container() {
    both_states(|s, _| {
        let out = tempfile::tempdir().unwrap();
        let o = out.path();
        // A directory into an existing directory: o/d, modes kept, owned by the caller.
        s.ok(&["cp", "c:/d", o.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(o.join("d/a")).unwrap(), "a\n");
        let b = std::fs::metadata(o.join("d/sub/b")).unwrap();
        assert_eq!((b.mode() & 0o777, b.uid()), (0o640, 0));
        // A file to a new name; a directory's content with /.; a volume's file.
        s.ok(&["cp", "c:/d/a", o.join("renamed").to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(o.join("renamed")).unwrap(), "a\n");
        s.ok(&["cp", "c:/d/sub/.", o.join("content").to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(o.join("content/b")).unwrap(), "b\n");
        s.ok(&["cp", "c:/vol/v", o.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(o.join("v")).unwrap(), "v\n");
        // To stdout as a tar.
        let t = s.cmd(&["cp", "c:/d/sub", "-"]).output().unwrap();
        assert!(t.status.success(), "{}", stderr(&t));
        let mut names: Vec<String> = tar::Archive::new(&t.stdout[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["sub", "sub/b"]);
        // docker's errors.
        let e = s.vessel(&["cp", "c:/nope", o.to_str().unwrap()]);
        assert!(
            stderr(&e).contains("Could not find the file /nope"),
            "{}",
            stderr(&e)
        );
        let e = s.vessel(&["cp", "c:/d", o.join("renamed").to_str().unwrap()]);
        assert!(
            stderr(&e).contains("cannot copy a directory"),
            "{}",
            stderr(&e)
        );
        let e = s.vessel(&["cp", "c:/d/a", o.join("missing/").to_str().unwrap()]);
        assert!(stderr(&e).contains("does not exist"), "{}", stderr(&e));
    });
}

#[test]
fn copy_into_a_container() {
    both_states(|s, _| {
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        std::fs::write(&f, "host\n").unwrap();
        std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
        std::fs::create_dir(src.path().join("dir")).unwrap();
        std::fs::write(src.path().join("dir/x"), "x\n").unwrap();
        s.ok(&["cp", f.to_str().unwrap(), "c:/d/"]);
        s.ok(&["cp", "-a", f.to_str().unwrap(), "c:/d/kept"]);
        s.ok(&[
            "cp",
            src.path().join("dir").to_str().unwrap(),
            "c:/vol/newdir",
        ]);
        // A tar on stdin into a directory.
        let mut tarball = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o600);
        tarball
            .append_data(&mut h, "fromtar", &b"t!\n"[..])
            .unwrap();
        let bytes = tarball.into_inner().unwrap();
        let mut child = s
            .cmd(&["cp", "-", "c:/d"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));

        // Look from inside (start it again if it is stopped).
        if s.inspect("c", "{{.State.Status}}") != "running" {
            s.ok(&["rm", "c"]);
            let got = s.ok(&[
                "run",
                "--rm",
                "-v",
                "cpvol:/vol",
                IMAGE,
                "cat",
                "/vol/newdir/x",
            ]);
            assert_eq!(got, "x\n");
            return;
        }
        let got = s.ok(&[
            "exec",
            "c",
            "sh",
            "-c",
            "stat -c '%u:%g %a' /d/f /d/kept /d/fromtar; cat /d/f /d/fromtar /vol/newdir/x",
        ]);
        assert_eq!(got, "0:0 644\n1234:5678 644\n0:0 600\nhost\nt!\nx\n");
        // A whiteout name in a tar is refused, nothing applied.
        let mut tarball = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        tarball.append_data(&mut h, ".wh.a", &b""[..]).unwrap();
        let bytes = tarball.into_inner().unwrap();
        let mut child = s
            .cmd(&["cp", "-", "c:/d"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        assert!(stderr(&out).contains(".wh."), "{}", stderr(&out));
        assert_eq!(s.ok(&["exec", "c", "cat", "/d/a"]), "a\n");
    });
}

#[test]
fn symlinks_in_the_container_cannot_reach_host_files() {
    both_states(|s, host| {
        let out = tempfile::tempdir().unwrap();
        let o = out.path();
        // Reading: a symlink is copied as a symlink ...
        s.ok(&["cp", "c:/d/secret", o.join("secret").to_str().unwrap()]);
        let md = std::fs::symlink_metadata(o.join("secret")).unwrap();
        assert!(md.file_type().is_symlink());
        // ... and followed (-L) only inside the container, where it leads nowhere.
        let e = s.vessel(&[
            "cp",
            "-L",
            "c:/d/secret",
            o.join("followed").to_str().unwrap(),
        ]);
        assert!(!e.status.success());
        assert!(!o.join("followed").exists());
        // A path through /rootlink or ../.. stays in the container's root.
        s.ok(&[
            "cp",
            "c:/rootlink/etc/passwd",
            o.join("passwd").to_str().unwrap(),
        ]);
        let passwd = std::fs::read_to_string(o.join("passwd")).unwrap();
        assert!(passwd.contains("www-data:x:33:33"), "{passwd}");
        assert_ne!(passwd, std::fs::read_to_string("/etc/passwd").unwrap());
        s.ok(&[
            "cp",
            "c:/../../../../etc/passwd",
            o.join("passwd2").to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(o.join("passwd2")).unwrap(), passwd);
        let secret_path = format!("c:{}/secret", host.display());
        let e = s.vessel(&["cp", &secret_path, o.join("direct").to_str().unwrap()]);
        assert!(stderr(&e).contains("Could not find"), "{}", stderr(&e));

        // Writing: through a symlink to a host directory, and to a host file.
        let f = o.join("payload");
        std::fs::write(&f, "pwned\n").unwrap();
        let _ = s.vessel(&["cp", f.to_str().unwrap(), "c:/d/escape/"]);
        let _ = s.vessel(&["cp", f.to_str().unwrap(), "c:/d/escape/payload"]);
        let _ = s.vessel(&["cp", f.to_str().unwrap(), "c:/d/secret"]);
        let _ = s.vessel(&["cp", f.to_str().unwrap(), "c:/rootlink/../../tmp/"]);
        assert_eq!(
            std::fs::read_dir(host.join("target")).unwrap().count(),
            0,
            "nothing written in the host directory"
        );
        assert_eq!(
            std::fs::read_to_string(host.join("secret")).unwrap(),
            "HOST SECRET\n"
        );
        // A tar with an absolute symlink and a file below it lands in the container.
        let mut tarball = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tarball
            .append_link(&mut h, "hop", host.join("target"))
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        tarball
            .append_data(&mut h, "hop/x", &b"pwned\n"[..])
            .unwrap();
        let bytes = tarball.into_inner().unwrap();
        let mut child = s
            .cmd(&["cp", "-", "c:/d"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let _ = child.wait_with_output().unwrap();
        assert_eq!(
            std::fs::read_dir(host.join("target")).unwrap().count(),
            0,
            "the tar's symlink stayed inside"
        );
    });
}
