//! Bad input: a clear error naming the field or path, a non-zero exit, and
//! nothing left behind (no state directory, no cgroup, no process).

mod common;

use common::{describe, Ctx};
use serde_json::{json, Value};

/// `create` must fail with every `needles` in stderr and leave nothing behind.
fn assert_create_fails(ctx: &Ctx, needles: &[&str]) -> String {
    let bundle = ctx.bundle.to_str().unwrap();
    let out = ctx.rt(&["create", "--bundle", bundle, ctx.id()]);
    assert!(
        !out.status.success(),
        "create should fail: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for n in needles {
        assert!(err.contains(n), "stderr does not mention {n:?}: {err}");
    }
    ctx.assert_nothing_left(ctx.id());
    err
}

#[test]
fn config_that_is_not_json() {
    let ctx = Ctx::new("notjson", &["true"]);
    std::fs::write(
        ctx.bundle.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", ",
    )
    .unwrap();
    assert_create_fails(&ctx, &["config.json"]);
}

#[test]
fn missing_config_json() {
    let ctx = Ctx::new("noconfig", &["true"]);
    std::fs::remove_file(ctx.bundle.join("config.json")).unwrap();
    let err = assert_create_fails(&ctx, &["config.json"]);
    assert!(err.contains(ctx.bundle.to_str().unwrap()), "{err}");
}

#[test]
fn wrong_type_in_a_field() {
    let mut ctx = Ctx::new("wrongtype", &["true"]);
    ctx.config["process"]["user"]["uid"] = json!("root");
    ctx.write_config();
    assert_create_fails(&ctx, &["process.user.uid"]);
}

#[test]
fn missing_process_args() {
    let mut ctx = Ctx::new("noargs", &["true"]);
    ctx.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("args");
    ctx.write_config();
    assert_create_fails(&ctx, &["process.args"]);
}

#[test]
fn relative_cwd() {
    let mut ctx = Ctx::new("relcwd", &["true"]);
    ctx.config["process"]["cwd"] = json!("tmp");
    ctx.write_config();
    assert_create_fails(&ctx, &["process.cwd", "tmp"]);
}

#[test]
fn nonexistent_namespace_path() {
    let mut ctx = Ctx::new("nspath", &["true"]);
    let nss = ctx.config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "network");
    nss.push(json!({"type": "network", "path": "/proc/999999999/ns/net"}));
    ctx.write_config();
    assert_create_fails(&ctx, &["linux.namespaces", "/proc/999999999/ns/net"]);
}

#[test]
fn missing_rootfs() {
    let mut ctx = Ctx::new("norootfs", &["true"]);
    ctx.config["root"]["path"] = json!("no-such-rootfs");
    ctx.write_config();
    assert_create_fails(&ctx, &["root.path", "no-such-rootfs"]);
}

#[test]
fn missing_executable() {
    // Found missing inside the container, after the cgroup was created:
    // this exercises the clean-up path.
    let ctx = Ctx::new("noexe", &["/bin/no-such-program"]);
    ctx.write_config();
    assert_create_fails(&ctx, &["process.args[0]", "/bin/no-such-program"]);

    let ctx = Ctx::new("noexepath", &["no-such-program"]);
    ctx.write_config();
    assert_create_fails(&ctx, &["no-such-program", "$PATH"]);
}

#[test]
fn missing_bind_mount_source() {
    let mut ctx = Ctx::new("nobindsrc", &["true"]);
    let src = ctx.path("no-such-source");
    ctx.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/x", "type": "bind", "source": src, "options": ["rbind"]
    }));
    ctx.write_config();
    assert_create_fails(&ctx, &[src.to_str().unwrap()]);
}

#[test]
fn hostname_without_uts_namespace() {
    let mut ctx = Ctx::new("nouts", &["true"]);
    ctx.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    ctx.config["hostname"] = json!("box");
    ctx.write_config();
    assert_create_fails(&ctx, &["hostname", "uts"]);
}

#[test]
fn a_limit_the_kernel_rejects() {
    let mut ctx = Ctx::new("badquota", &["true"]);
    // The kernel's minimum CFS quota is 1000 us.
    ctx.config["linux"]["resources"] = json!({"cpu": {"quota": 10, "period": 100000}});
    ctx.write_config();
    assert_create_fails(&ctx, &["cfs_quota_us"]);
}

#[test]
fn unknown_capability() {
    let mut ctx = Ctx::new("badcap", &["true"]);
    ctx.config["process"]["capabilities"]["bounding"] = json!(["CAP_NO_SUCH_THING"]);
    ctx.write_config();
    assert_create_fails(&ctx, &["process.capabilities.bounding"]);
}

#[test]
fn errors_go_to_the_json_log() {
    let mut ctx = Ctx::new("log", &["true"]);
    ctx.config["process"]["cwd"] = json!("relative/dir");
    ctx.write_config();
    let log = ctx.path("runtime.log");
    let bundle = ctx.bundle.to_str().unwrap();
    let err = ctx.rt_err(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        bundle,
        ctx.id(),
    ]);
    assert!(err.contains("process.cwd"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap())
        .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {text}"));
    assert_eq!(line["level"], "error", "{line}");
    let msg = line["msg"].as_str().unwrap();
    assert!(msg.contains("process.cwd"), "{msg}");
    assert!(line["time"].is_string(), "{line}");
    ctx.assert_nothing_left(ctx.id());
}

#[test]
fn errors_go_to_the_text_log() {
    let ctx = Ctx::new("textlog", &["true"]);
    let log = ctx.path("runtime.log");
    ctx.rt_err(&["--log", log.to_str().unwrap(), "state", "no-such-id-abc"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("level=error") && text.contains("no-such-id-abc"),
        "{text}"
    );
}
