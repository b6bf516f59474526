//! `vessel build` end to end, as root: real containers for RUN, the result
//! run by the engine.

mod common;

use common::*;

const MULTI_STAGE: &str = r#"# A two-stage build.
ARG BASE=localhost/busybox
FROM $BASE AS builder
ARG GREETING=hello
WORKDIR /work
COPY hello.txt .
RUN echo "$GREETING from $(cat hello.txt)" > made.txt \
    && cat /proc/sys/kernel/random/uuid > stamp \
    && echo ran-in-builder

FROM localhost/busybox
ENV WHO=vessel
COPY --from=builder --chown=33:33 /work/made.txt /work/stamp /out/
COPY . /ctx/
RUN rm /etc/group
USER www
WORKDIR /out
CMD ["sh", "-c", "cat made.txt stamp; echo who=$WHO; id -u; pwd; stat -c owner=%u made.txt; test -e /etc/group || echo group-gone; ls /ctx"]
"#;

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Containerfile", MULTI_STAGE),
        ("hello.txt", "the context"),
        ("secret.txt", "do not copy"),
        ("logs/a.log", "x"),
        (".dockerignore", "secret.txt\n**/*.log\n"),
    ]
}

#[test]
fn multi_stage_build_runs_and_rebuilds_from_cache() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let ctx = context(tmp.path(), &files());
    let mut opts = options(&ctx, "localhost/app:1");
    opts.build_args.insert("GREETING".into(), "hi".into());

    let first = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(first.runs, 2);
    let run_out = std::fs::read_to_string(tmp.path().join("run-output")).unwrap();
    assert!(
        run_out.contains("ran-in-builder"),
        "RUN output reaches the build's: {run_out}"
    );

    let (out, code) = run_image(&engine, "localhost/app:1", tmp.path());
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi from the context", "{out}");
    let stamp = lines[1].to_string();
    assert_eq!(
        &lines[2..7],
        ["who=vessel", "33", "/out", "owner=33", "group-gone"],
        "{out}"
    );
    let ctx_listing = &lines[7..];
    assert!(
        ctx_listing.contains(&"hello.txt") && ctx_listing.contains(&"Containerfile"),
        "{out}"
    );
    assert!(
        !ctx_listing.contains(&"secret.txt"),
        ".dockerignore honoured: {out}"
    );
    assert!(ctx_listing.contains(&"logs"), "{out}");

    // The image as stored: OCI manifest, history, diff IDs.
    let image = engine
        .images()
        .image(
            &vessel_image::Reference::parse("localhost/app:1").unwrap(),
            &vessel_image::manifest::Platform::linux_amd64(),
        )
        .unwrap();
    assert_eq!(image.config_digest, first.id);
    let diff_ids = image.config.rootfs().diff_ids().len();
    assert_eq!(diff_ids, image.manifest.layers().len());
    assert_eq!(diff_ids, 4, "busybox + COPY --from + COPY . + RUN");
    let history = image.config.history().as_ref().unwrap();
    assert!(history.iter().any(|h| h.empty_layer() == Some(true)));

    // Unchanged rebuild: every layer from the cache, nothing run, same image.
    let second = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(second.runs, 0);
    assert_eq!(
        second.cached_layers, 5,
        "2 in the builder stage, 3 in the final one"
    );
    assert_eq!(second.id, first.id);
    let (out, _) = run_image(&engine, "localhost/app:1", tmp.path());
    assert_eq!(
        out.lines().nth(1).unwrap(),
        stamp,
        "the RUN did not run again"
    );

    // A changed COPY source rebuilds from there on.
    std::fs::write(ctx.join("hello.txt"), "a changed context").unwrap();
    let third = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(third.runs, 2);
    let (out, _) = run_image(&engine, "localhost/app:1", tmp.path());
    assert_eq!(out.lines().next().unwrap(), "hi from a changed context");
    let third_stamp = out.lines().nth(1).unwrap().to_owned();

    // A change that only the final stage's `COPY .` sees: the builder stage
    // and the COPY --from come from the cache; only COPY . and its RUN again.
    std::fs::write(ctx.join("extra.txt"), "new").unwrap();
    let only_final = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(only_final.runs, 1, "only the final stage's RUN");
    assert_eq!(
        only_final.cached_layers, 3,
        "the builder's COPY and RUN, the final stage's COPY --from"
    );
    let (out, _) = run_image(&engine, "localhost/app:1", tmp.path());
    assert!(out.lines().any(|l| l == "extra.txt"), "{out}");
    assert_eq!(
        out.lines().nth(1).unwrap(),
        third_stamp,
        "the builder's RUN did not run again"
    );

    // --no-cache runs everything again.
    opts.no_cache = true;
    let fourth = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(fourth.runs, 2);
    let (out, _) = run_image(&engine, "localhost/app:1", tmp.path());
    assert_ne!(out.lines().nth(1).unwrap(), stamp);
    assert_ne!(out.lines().nth(1).unwrap(), third_stamp);

    // --target builds the first stage only.
    opts.no_cache = false;
    opts.target = Some("builder".into());
    opts.tags = vec![vessel_image::Reference::parse("localhost/builder").unwrap()];
    let t = build(&engine, &opts, tmp.path()).unwrap();
    assert_eq!(t.runs, 0);
    assert!(
        engine.list().unwrap().is_empty(),
        "no container is left behind"
    );
}

#[test]
fn a_failing_run_names_the_line_and_the_exit_code() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let ctx = context(
        tmp.path(),
        &[(
            "Containerfile",
            "FROM localhost/busybox\nRUN true\nRUN echo about to fail; exit 3\n",
        )],
    );
    let e = build(&engine, &options(&ctx, "localhost/fails"), tmp.path()).unwrap_err();
    let msg = chain(&e);
    assert!(
        msg.contains("Containerfile:3: RUN echo about to fail; exit 3"),
        "{msg}"
    );
    assert!(msg.contains("returned a non-zero code: 3"), "{msg}");
    let r = vessel_image::Reference::parse("localhost/fails").unwrap();
    assert!(
        engine.images().tags().get(&r).unwrap().is_none(),
        "no image is tagged"
    );
    assert!(
        engine.list().unwrap().is_empty(),
        "the RUN container is removed"
    );
}

#[test]
fn syntax_errors_and_escapes_are_refused_clearly() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    std::fs::write(tmp.path().join("outside"), "secret").unwrap();
    let ctx = context(tmp.path(), &[("ok.txt", "ok")]);
    std::os::unix::fs::symlink("../outside", ctx.join("link-out")).unwrap();
    for (text, want) in [
        ("FROM localhost/busybox\n\nBOGUS x\n", "Containerfile:3: unknown instruction: BOGUS"),
        ("FROM localhost/busybox\nCOPY ../outside /x\n", "Containerfile:2: COPY ../outside /x: Source \"../outside\" is outside the build context"),
        ("FROM localhost/busybox\nCOPY link-out /x\n", "leads out of the build context"),
        ("FROM localhost/busybox\nADD http://example.com/x /x\n", "not supported"),
        ("RUN true\n", "only ARG may come before the first FROM"),
        ("FROM localhost/busybox\nCOPY ok.txt ok.txt /dir\n", "must be a directory"),
    ] {
        std::fs::write(ctx.join("Containerfile"), text).unwrap();
        let e = build(&engine, &options(&ctx, "localhost/bad"), tmp.path()).unwrap_err();
        let msg = chain(&e);
        assert!(msg.contains(want), "{text:?}: {msg}");
    }
}

#[test]
fn stages_the_target_does_not_use_are_not_built() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let ctx = context(
        tmp.path(),
        &[(
            "Containerfile",
            "FROM localhost/busybox AS base\nRUN echo base > /base\n\
             FROM base AS broken-tests\nRUN echo tests ran; exit 7\n\
             FROM localhost/busybox AS tools\nRUN echo tool > /tool\n\
             FROM base\nCOPY --from=tools /tool /tool\nCMD [\"cat\", \"/base\", \"/tool\"]\n",
        )],
    );
    // The failing stage is skipped: the build succeeds with two RUNs.
    let built = build(&engine, &options(&ctx, "localhost/skips"), tmp.path()).unwrap();
    assert_eq!(built.runs, 2);
    let run_out = std::fs::read_to_string(tmp.path().join("run-output")).unwrap();
    assert!(!run_out.contains("tests ran"), "{run_out}");
    let (out, code) = run_image(&engine, "localhost/skips", tmp.path());
    assert_eq!((out.as_str(), code), ("base\ntool\n", 0));

    // Targeting the broken stage builds it (and fails on its RUN).
    let mut opts = options(&ctx, "localhost/skips-tests");
    opts.target = Some("broken-tests".into());
    let e = build(&engine, &opts, tmp.path()).unwrap_err();
    assert!(
        chain(&e).contains("returned a non-zero code: 7"),
        "{}",
        chain(&e)
    );
}

#[test]
fn what_a_run_writes_under_a_volume_path_stays_in_the_image() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    let ctx = context(
        tmp.path(),
        &[(
            "Containerfile",
            "FROM localhost/busybox\nVOLUME /data\nRUN mkdir -p /data && echo kept > /data/f\nCMD [\"cat\", \"/data/f\"]\n",
        )],
    );
    build(&engine, &options(&ctx, "localhost/volbuild"), tmp.path()).unwrap();
    // The container's anonymous /data volume starts from the image's content.
    let (out, code) = run_image(&engine, "localhost/volbuild", tmp.path());
    assert_eq!((out.as_str(), code), ("kept\n", 0));
}

#[test]
fn scratch_shell_exec_form_add_and_config_instructions() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(tmp.path());
    // From scratch there is no /bin/sh: the shell-form RUN works only
    // through SHELL, the exec-form one through no shell at all.
    let containerfile = r#"FROM localhost/busybox AS tools
FROM scratch
COPY --from=tools /bin/busybox /bin/busybox
SHELL ["/bin/busybox", "sh", "-c"]
RUN ["/bin/busybox", "mkdir", "/made-by-exec"]
RUN echo via-shell > /shell.txt
ADD files.tar /unpacked/
COPY conf/*.conf /etc/app/
LABEL org.example.team=vessel
EXPOSE 8080/tcp 53/udp
ENTRYPOINT ["/bin/busybox", "sh", "-c"]
CMD ["/bin/busybox cat /unpacked/a.txt /etc/app/x.conf /shell.txt; /bin/busybox ls /etc/app; /bin/busybox test -d /made-by-exec && echo exec-ok"]
"#;
    let ctx = context(
        tmp.path(),
        &[
            ("Containerfile", containerfile),
            ("conf/x.conf", "x=1\n"),
            ("conf/y.conf", "y=2\n"),
            ("conf/skip.txt", "not a .conf\n"),
        ],
    );
    let mut tar = vessel_testkit::Tarball::new();
    tar.file("a.txt", 0o644, b"from the tar\n");
    std::fs::write(ctx.join("files.tar"), tar.finish()).unwrap();

    let built = build(&engine, &options(&ctx, "localhost/scratchy"), tmp.path()).unwrap();
    assert_eq!(built.runs, 2);
    let (out, code) = run_image(&engine, "localhost/scratchy", tmp.path());
    assert_eq!(
        (out.as_str(), code),
        ("from the tar\nx=1\nvia-shell\nx.conf\ny.conf\nexec-ok\n", 0)
    );

    let image = engine
        .images()
        .image(
            &vessel_image::Reference::parse("localhost/scratchy").unwrap(),
            &vessel_image::manifest::Platform::linux_amd64(),
        )
        .unwrap();
    assert_eq!(
        image.manifest.layers().len(),
        5,
        "COPY busybox, 2 RUNs, ADD, COPY: no base layer"
    );
    let config = image.config.config().as_ref().unwrap();
    assert_eq!(
        config.labels().as_ref().unwrap().get("org.example.team"),
        Some(&"vessel".to_string())
    );
    let ports = config.exposed_ports().as_ref().unwrap();
    assert!(ports.contains(&"8080/tcp".to_string()), "{ports:?}");
    assert!(ports.contains(&"53/udp".to_string()), "{ports:?}");
    assert_eq!(
        config.entrypoint().as_ref().unwrap(),
        &["/bin/busybox", "sh", "-c"]
    );
}
