//! `vessel pull`, `push`, `login`, `logout`, `run` of a missing image and
//! `build FROM` a registry's image, from the command line, against a real
//! `docker-registry` on 127.0.0.1 (vessel_testkit::registry) with skopeo as
//! the independent client. Needs root (containers run).

mod engine_common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use engine_common::{stderr, stdout, Store, IMAGE};
use vessel_testkit::registry::{tool, Auth, Registry};

/// A store with nothing in it (no busybox image).
fn empty_store() -> Store {
    Store {
        dir: tempfile::Builder::new()
            .prefix("vessel-test")
            .tempdir()
            .unwrap(),
    }
}

/// The manifest digest skopeo reports for `reference` (`docker://` implied).
fn skopeo_digest(reference: &str, authfile: Option<&Path>) -> String {
    let mut c = std::process::Command::new(tool("skopeo"));
    c.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
    if let Some(f) = authfile {
        c.arg("--authfile").arg(f);
    }
    let out = c.arg(format!("docker://{reference}")).output().unwrap();
    assert!(out.status.success(), "skopeo inspect: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn failed(o: &Output, what: &str) -> String {
    assert!(!o.status.success(), "{what} succeeded");
    stderr(o)
}

#[test]
fn push_pull_run_and_build_through_a_registry() {
    let s = Store::new();
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let lib = format!("{host}/lib/busybox:1");

    // Push: the digest on stdout is the one the registry serves; off a
    // terminal the progress is plain lines, one per blob, no escapes.
    let o = s.vessel(&["push", IMAGE, &lib]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pushed = stdout(&o).trim().to_owned();
    assert!(pushed.starts_with("sha256:"), "{pushed}");
    assert_eq!(skopeo_digest(&lib, None), pushed);
    let progress = stderr(&o);
    assert!(progress.contains("Copying blob"), "{progress}");
    assert!(!progress.contains('\x1b'), "{progress:?}");
    // -q: nothing but the digest.
    let o = s.vessel(&["push", "-q", IMAGE, &lib]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert_eq!(stdout(&o), format!("{pushed}\n"));

    // `run` of an image the store lacks pulls it first.
    let e = empty_store();
    let o = e.vessel(&["run", "--rm", &lib, "echo", "pulled-and-ran"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pulled-and-ran\n");
    assert!(
        stderr(&o).contains(&format!("Unable to find image '{lib}' locally")),
        "{}",
        stderr(&o)
    );
    assert!(e.ok(&["images"]).contains(&format!("{host}/lib/busybox")));

    // pull -q prints only the digest; a second pull finds every blob.
    let p = empty_store();
    let o = p.vessel(&["pull", "-q", &lib]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert_eq!(stdout(&o), format!("{pushed}\n"));
    let o = p.vessel(&["pull", &lib]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already in the store"),
        "{}",
        stderr(&o)
    );

    // Bad input: a clear error, a non-zero exit, nothing in the store.
    let b = empty_store();
    let e1 = failed(
        &b.vessel(&["pull", &format!("{host}/Bad/Name:1")]),
        "pull Bad",
    );
    assert!(e1.contains("Bad/Name"), "{e1}");
    let e2 = failed(
        &b.vessel(&["pull", &format!("{host}/lib/absent:1")]),
        "pull absent",
    );
    assert!(e2.contains(&host) && e2.contains("404"), "{e2}");
    let e3 = failed(
        &b.vessel(&["run", "--rm", &format!("{host}/lib/busybox:nope"), "true"]),
        "run nope",
    );
    assert!(e3.contains("404"), "{e3}");
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert_eq!(b.ok(&["ps", "-aq"]), "");

    // A build FROM the registry's image (pulled), pushed, then pulled and
    // run elsewhere: it prints what the build put in.
    let builder = empty_store();
    let ctx = builder.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("msg"), "built on a pulled base\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {lib}\nCOPY msg /msg\nRUN echo ran >> /msg\nCMD [\"cat\", \"/msg\"]\n"),
    )
    .unwrap();
    let app = format!("{host}/team/app:1");
    builder.ok(&["build", "-q", "-t", &app, ctx.to_str().unwrap()]);
    let o = builder.vessel(&["push", &app]);
    assert!(o.status.success(), "{}", stderr(&o));
    let app_digest = stdout(&o).trim().to_owned();
    assert_eq!(skopeo_digest(&app, None), app_digest);
    // The base image's layer is mounted from where it was pulled, not sent.
    assert!(
        stderr(&o).contains("mounted from lib/busybox"),
        "{}",
        stderr(&o)
    );
    let r = empty_store();
    let out = r.ok(&["run", "--rm", &app]);
    assert_eq!(out, "built on a pulled base\nran\n");
}

#[test]
fn login_and_logout_keep_credentials_in_auth_json() {
    let s = Store::new();
    let reg = Registry::start(Auth::Basic {
        user: "vessel".into(),
        password: "s3cret".into(),
    });
    let host = reg.host();
    let name = format!("{host}/private/busybox:1");
    let auth = s.dir.path().join("auth.json");
    let authfile = auth.to_str().unwrap();

    let e = failed(
        &s.vessel(&["push", "--authfile", authfile, IMAGE, &name]),
        "push",
    );
    assert!(e.contains("401"), "{e}");
    let e = failed(
        &s.vessel(&[
            "login",
            "--authfile",
            authfile,
            "-u",
            "vessel",
            "-p",
            "wrong",
            &host,
        ]),
        "login with a wrong password",
    );
    assert!(e.contains("401"), "{e}");
    assert!(!auth.exists(), "a refused login wrote {authfile}");

    let mut login = s
        .cmd(&[
            "login",
            "--authfile",
            authfile,
            "-u",
            "vessel",
            "--password-stdin",
            &host,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let o = login.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded!\n");
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    let entry = doc["auths"][&host]["auth"].as_str().unwrap().to_owned();
    assert!(!entry.contains("s3cret"));

    // vessel pushes with it, and skopeo reads the same file.
    let o = s.vessel(&["push", "-q", "--authfile", authfile, IMAGE, &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(skopeo_digest(&name, Some(&auth)), stdout(&o).trim());

    // docker's config.json is read too: `run` pulls with it (no --authfile
    // there, so the credentials are looked up as podman does).
    let docker = s.dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let config = serde_json::json!({"auths": {&host: {"auth": entry}}});
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    let e = empty_store();
    let env = |c: &mut std::process::Command| {
        c.env("REGISTRY_AUTH_FILE", e.dir.path().join("none.json"))
            .env("DOCKER_CONFIG", &docker)
            .env("HOME", e.dir.path());
    };
    let mut c = e.cmd(&["run", "--rm", &name, "echo", "pulled-with-docker-config"]);
    env(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled-with-docker-config\n");

    // logout removes the entry: the registry refuses vessel again.
    assert_eq!(
        s.ok(&["logout", "--authfile", authfile, &host]),
        format!("Removed login credentials for {host}\n")
    );
    let e2 = empty_store();
    let e = failed(&e2.vessel(&["pull", "--authfile", authfile, &name]), "pull");
    assert!(e.contains("401"), "{e}");
    assert_eq!(e2.ok(&["images", "-q"]), "");
    let e = failed(
        &s.vessel(&["logout", "--authfile", authfile, &host]),
        "logout",
    );
    assert!(e.contains(&format!("Not logged into {host}")), "{e}");
}
