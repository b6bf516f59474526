//! `vessel build` from the command line: the image it makes runs with
//! `vessel run`, an unchanged rebuild gives the same image, and a broken
//! Containerfile is refused with its file and line. Needs root.

mod engine_common;

use engine_common::{stderr, Store};

#[test]
fn build_then_run_and_rebuild_from_cache() {
    let s = Store::new();
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("greeting"), "hello from the context\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/busybox\nCOPY greeting /etc/\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n\
         CMD [\"sh\", \"-c\", \"cat /etc/greeting /stamp\"]\n",
    )
    .unwrap();
    let ctx = ctx.to_str().unwrap();
    let first = s.ok(&["build", "-q", "-t", "localhost/app:1", ctx]);
    let out = s.ok(&["run", "--rm", "localhost/app:1"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello from the context"));
    let stamp = lines.next().unwrap().to_owned();

    let second = s.ok(&["build", "-q", "-t", "localhost/app:1", ctx]);
    assert_eq!(first, second, "an unchanged rebuild is the same image");
    let out = s.ok(&["run", "--rm", "localhost/app:1"]);
    assert!(
        out.ends_with(&format!("{stamp}\n")),
        "the RUN was not run again"
    );
    assert!(s.ok(&["images"]).contains("localhost/app"));

    std::fs::write(
        format!("{ctx}/Containerfile"),
        "FROM localhost/busybox\nRUN\n",
    )
    .unwrap();
    let out = s.vessel(&["build", "-t", "localhost/bad", ctx]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Containerfile:2"), "{}", stderr(&out));
}
