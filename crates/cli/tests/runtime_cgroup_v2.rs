//! cgroup v2, as on most users' hosts. This machine is v1 hybrid, so the
//! runtime runs in a private mount namespace whose /sys/fs/cgroup is the
//! cgroup2 hierarchy (the same one the host has at /sys/fs/cgroup/unified,
//! where the test checks the result). Only `hugetlb` is enabled in that tree
//! here, so what is checked is structure, membership, the freezer and
//! removal, plus a clear error for a controller the host lacks.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{describe, Ctx, CGROUP_PARENT};
use serde_json::json;

/// The host's view of the cgroup2 hierarchy.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// A process holding a private mount namespace with cgroup2 on /sys/fs/cgroup.
struct V2Namespace {
    child: Child,
}

impl V2Namespace {
    fn start() -> V2Namespace {
        common::require_environment();
        assert!(
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .contains(" /sys/fs/cgroup/unified "),
            "this test expects the hybrid layout with cgroup2 at {UNIFIED}"
        );
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup \
                 && echo ready && exec sleep 100000",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line, "ready\n",
            "could not set up the cgroup2 mount namespace"
        );
        V2Namespace { child }
    }

    /// Prefix that runs a command in the namespace.
    fn prefix(&self) -> Vec<String> {
        ["nsenter", "-t", &self.child.id().to_string(), "-m", "--"]
            .map(String::from)
            .to_vec()
    }
}

impl Drop for V2Namespace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn v2_dir(ctx: &Ctx) -> PathBuf {
    PathBuf::from(UNIFIED).join(CGROUP_PARENT).join(&ctx.name)
}

fn v2_file(ctx: &Ctx, file: &str) -> String {
    let p = v2_dir(ctx).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_owned()
}

#[test]
fn v2_membership_freezer_and_removal() {
    let ns = V2Namespace::start();
    let mut ctx = Ctx::new(
        "v2",
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; ls /sys/fs/cgroup; sleep 1000",
        ],
    );
    ctx.prefix = ns.prefix();
    ctx.start_ok();
    let pid = ctx.pid();
    assert_eq!(ctx.state()["status"], "running");

    // The container is in its v2 cgroup, and only there.
    let procs = v2_file(&ctx, "cgroup.procs");
    assert_eq!(procs, pid.to_string(), "cgroup.procs: {procs}");
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("0::/{CGROUP_PARENT}/{}", ctx.id());
    assert!(
        host_view.lines().any(|l| l == want),
        "{want} not in\n{host_view}"
    );
    // The v1 hierarchies (not visible in the namespace) were not used.
    assert!(
        !host_view.contains(&format!(":memory:/{CGROUP_PARENT}/")),
        "{host_view}"
    );

    // From inside (cgroup namespace): at the root, with a cgroup2 mount.
    let inside = ctx.exec_ok(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; ls /sys/fs/cgroup; grep ' /sys/fs/cgroup ' /proc/self/mountinfo",
    ]);
    assert!(inside.lines().any(|l| l == "0::/"), "{inside}");
    assert!(inside.lines().any(|l| l == "cgroup.procs"), "{inside}");
    assert!(inside.contains(" - cgroup2 "), "{inside}");

    // ps sees the init.
    let pids: serde_json::Value =
        serde_json::from_str(&ctx.rt_ok(&["ps", "--format", "json", ctx.id()])).unwrap();
    assert!(pids.as_array().unwrap().iter().any(|p| p == pid), "{pids}");

    ctx.rt_ok(&["pause", ctx.id()]);
    assert_eq!(ctx.state()["status"], "paused");
    assert_eq!(v2_file(&ctx, "cgroup.freeze"), "1");
    assert!(v2_file(&ctx, "cgroup.events").contains("frozen 1"));
    ctx.rt_ok(&["resume", ctx.id()]);
    assert_eq!(ctx.state()["status"], "running");
    assert_eq!(v2_file(&ctx, "cgroup.freeze"), "0");
    assert!(v2_file(&ctx, "cgroup.events").contains("frozen 0"));

    ctx.rt_ok(&["delete", "--force", ctx.id()]);
    assert!(
        !v2_dir(&ctx).exists(),
        "{} left behind",
        v2_dir(&ctx).display()
    );
    assert!(!ctx.root.join(ctx.id()).exists());
}

#[test]
fn v2_run_exit_code_and_cleanup() {
    let ns = V2Namespace::start();
    let mut ctx = Ctx::new("v2run", &["sh", "-c", "cat /proc/self/cgroup; exit 5"]);
    ctx.prefix = ns.prefix();
    let out = ctx.run();
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    // This kernel also lists its v1 hierarchies; the v2 line is what counts.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "0::/"), "{stdout}");
    assert!(!v2_dir(&ctx).exists());
}

#[test]
fn v2_missing_controller_is_a_clear_error() {
    let ns = V2Namespace::start();
    let controllers = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers")).unwrap();
    assert!(
        !controllers.split_whitespace().any(|c| c == "pids"),
        "this host's cgroup2 tree has pids ({controllers}); the test expects it not to"
    );
    let mut ctx = Ctx::new("v2nopids", &["true"]);
    ctx.prefix = ns.prefix();
    ctx.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(err.contains("pids"), "{err}");
    assert!(
        !v2_dir(&ctx).exists(),
        "{} left behind",
        v2_dir(&ctx).display()
    );
    assert!(!ctx.root.join(ctx.id()).exists());
}

#[test]
fn v2_without_cgroup_namespace_binds_the_containers_cgroup() {
    let ns = V2Namespace::start();
    // cgroup.freeze exists in every cgroup but the root: seeing it means
    // /sys/fs/cgroup is the container's own cgroup, not the hierarchy root.
    let mut ctx = Ctx::new(
        "v2nocgns",
        &[
            "sh",
            "-c",
            "test -e /sys/fs/cgroup/cgroup.freeze && echo own-cgroup; cat /proc/self/cgroup",
        ],
    );
    ctx.prefix = ns.prefix();
    ctx.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let out = ctx.run_ok();
    assert!(out.starts_with("own-cgroup\n"), "{out}");
    let want = format!("0::/{CGROUP_PARENT}/{}", ctx.id());
    assert!(out.lines().any(|l| l == want), "{want} not in {out}");
}
