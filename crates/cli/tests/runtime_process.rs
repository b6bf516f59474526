//! config.json's `process` (and hostname/domainname), checked from inside the container.

mod common;

use common::{status_field, Ctx};
use serde_json::json;

#[test]
fn args_env_and_cwd() {
    let mut ctx = Ctx::new(
        "argsenv",
        &[
            "sh",
            "-c",
            "printf '%s|' \"$0\" \"$1\"; echo; echo \"FOO=$FOO\"; echo \"HOME=$HOME\"; pwd",
            "arg zero",
            "two words",
        ],
    );
    ctx.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    ctx.config["process"]["cwd"] = json!("/tmp");
    let out = ctx.run_ok();
    assert_eq!(
        out, "arg zero|two words|\nFOO=bar baz\nHOME=/root\n/tmp\n",
        "{out}"
    );
}

#[test]
fn missing_cwd_is_created() {
    // runc creates process.cwd when it does not exist; so must we.
    let mut ctx = Ctx::new("mkcwd", &["pwd"]);
    ctx.config["process"]["cwd"] = json!("/work/dir");
    assert_eq!(ctx.run_ok(), "/work/dir\n");
}

#[test]
fn user_groups_and_umask() {
    let mut ctx = Ctx::new(
        "user",
        &[
            "sh",
            "-c",
            "id -u; id -g; id -G; umask; touch /tmp/f; stat -c %a /tmp/f",
        ],
    );
    ctx.config["process"]["user"] = json!({
        "uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027
    });
    let out = ctx.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["10", "1001", "20"], "{out}");
    assert_eq!(lines[3], "0027", "{out}");
    assert_eq!(lines[4], "640", "{out}");
}

#[test]
fn default_umask_is_0022() {
    let mut ctx = Ctx::new("umask", &["sh", "-c", "umask"]);
    ctx.config["process"]["user"]
        .as_object_mut()
        .unwrap()
        .remove("umask");
    assert_eq!(ctx.run_ok(), "0022\n");
}

/// Capability bits as /proc/PID/status prints them.
fn mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | 1 << b))
}

const CHOWN: u32 = 0;
const DAC_OVERRIDE: u32 = 1;
const KILL: u32 = 5;
const NET_BIND_SERVICE: u32 = 10;
const NET_RAW: u32 = 13;
const SYS_ADMIN: u32 = 21;

fn caps_config(ctx: &mut Ctx) {
    ctx.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
}

#[test]
fn capabilities_of_a_non_root_user() {
    let mut ctx = Ctx::new("capsuser", &["cat", "/proc/self/status"]);
    caps_config(&mut ctx);
    ctx.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    ctx.config["process"]["noNewPrivileges"] = json!(false);
    let status = ctx.run_ok();
    // After execve of a file without file capabilities, a non-root process
    // keeps exactly its ambient set in permitted and effective.
    assert_eq!(
        status_field(&status, "CapBnd"),
        mask(&[
            CHOWN,
            DAC_OVERRIDE,
            KILL,
            NET_BIND_SERVICE,
            NET_RAW,
            SYS_ADMIN
        ])
    );
    assert_eq!(
        status_field(&status, "CapInh"),
        mask(&[KILL, NET_BIND_SERVICE])
    );
    assert_eq!(status_field(&status, "CapAmb"), mask(&[NET_BIND_SERVICE]));
    assert_eq!(status_field(&status, "CapPrm"), mask(&[NET_BIND_SERVICE]));
    assert_eq!(status_field(&status, "CapEff"), mask(&[NET_BIND_SERVICE]));
}

#[test]
fn capabilities_of_root() {
    let mut ctx = Ctx::new("capsroot", &["cat", "/proc/self/status"]);
    caps_config(&mut ctx);
    let status = ctx.run_ok();
    // execve as uid 0 grants permitted = bounding | inheritable (the kernel's
    // root semantics), but no_new_privs (the default spec's) caps it at the
    // permitted set before execve; effective = permitted; ambient survives.
    let bnd = mask(&[
        CHOWN,
        DAC_OVERRIDE,
        KILL,
        NET_BIND_SERVICE,
        NET_RAW,
        SYS_ADMIN,
    ]);
    assert_eq!(status_field(&status, "CapBnd"), bnd);
    assert_eq!(
        status_field(&status, "CapInh"),
        mask(&[KILL, NET_BIND_SERVICE])
    );
    assert_eq!(status_field(&status, "CapAmb"), mask(&[NET_BIND_SERVICE]));
    let prm = mask(&[CHOWN, KILL, NET_BIND_SERVICE, SYS_ADMIN]);
    assert_eq!(status_field(&status, "CapPrm"), prm);
    assert_eq!(status_field(&status, "CapEff"), prm);
}

#[test]
fn dropped_capability_is_really_gone() {
    // CAP_CHOWN is not in the default set: chown to another user fails.
    let ctx = Ctx::new(
        "nochown",
        &[
            "sh",
            "-c",
            "touch /tmp/f; chown 1000 /tmp/f && echo chowned || echo denied",
        ],
    );
    assert_eq!(ctx.run_ok(), "denied\n");
    let mut ctx = Ctx::new(
        "chown",
        &[
            "sh",
            "-c",
            "touch /tmp/f; chown 1000 /tmp/f && echo chowned || echo denied",
        ],
    );
    for set in ["bounding", "effective", "permitted"] {
        ctx.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    assert_eq!(ctx.run_ok(), "chowned\n");
}

#[test]
fn rlimits_soft_and_hard() {
    let mut ctx = Ctx::new("rlimits", &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    // Below this machine's hard limit (20000): raising it needs CAP_SYS_RESOURCE.
    ctx.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1234, "hard": 4321}
    ]);
    assert_eq!(ctx.run_ok(), "1234\n4321\n");
}

#[test]
fn no_new_privileges() {
    let ctx = Ctx::new("nnp", &["cat", "/proc/self/status"]);
    // The default spec asks for it.
    assert_eq!(status_field(&ctx.run_ok(), "NoNewPrivs"), "1");
    let mut ctx = Ctx::new("nonnp", &["cat", "/proc/self/status"]);
    ctx.config["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(status_field(&ctx.run_ok(), "NoNewPrivs"), "0");
}

#[test]
fn oom_score_adj() {
    let mut ctx = Ctx::new("oomadj", &["cat", "/proc/self/oom_score_adj"]);
    ctx.config["process"]["oomScoreAdj"] = json!(123);
    assert_eq!(ctx.run_ok(), "123\n");
}

#[test]
fn hostname_and_domainname() {
    let host_before = nix::unistd::gethostname().unwrap();
    let mut ctx = Ctx::new(
        "uts",
        &["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
    );
    ctx.config["hostname"] = json!("box-one");
    ctx.config["domainname"] = json!("example.test");
    assert_eq!(ctx.run_ok(), "box-one\nexample.test\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn stdin_is_passed_through() {
    let ctx = Ctx::new("stdin", &["sh", "-c", "read line; echo got:$line"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let input = ctx.path("input");
    std::fs::write(&input, "hello\n").unwrap();
    let mut cmd = ctx.cmd();
    cmd.args(["run", "--bundle", bundle, ctx.id()])
        .stdin(std::fs::File::open(&input).unwrap());
    let out = common::output_via_files(&mut cmd, ctx.tmp.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
}

#[test]
fn sysctl_in_the_containers_namespaces() {
    let mut ctx = Ctx::new(
        "sysctl",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        ],
    );
    ctx.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    // The default readonlyPaths include /proc/sys: sysctls are written first.
    assert_eq!(ctx.run_ok(), "1\n1234\n");
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        "1234\n"
    );
}
