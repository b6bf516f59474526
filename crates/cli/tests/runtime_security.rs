//! Runtime escapes that must not work: descriptor leaks, overwriting the
//! runtime binary through /proc/PID/exe; and seccomp.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;

use common::{describe, output_via_files, status_field, Ctx, RUNTIME};
use serde_json::json;

/// Run vessel-runtime `args` through a shell that first opens `fds`
/// (e.g. `7</etc/hostname`) without close-on-exec, as a careless caller would.
fn rt_with_open_fds(ctx: &Ctx, redirections: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("exec {redirections}; exec \"$0\" \"$@\""))
        .arg(RUNTIME)
        .arg("--root")
        .arg(&ctx.root)
        .args(args)
        .stdin(std::process::Stdio::null());
    output_via_files(&mut cmd, ctx.tmp.path())
}

#[test]
fn no_descriptor_leaks_into_the_container() {
    let ctx = Ctx::new("fdleak", &["ls", "/proc/self/fd"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let out = rt_with_open_fds(
        &ctx,
        "7</etc/hostname 9<>/dev/null",
        &["run", "--bundle", bundle, ctx.id()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // 3 is the directory ls itself opened.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
}

#[test]
fn no_descriptor_leaks_into_an_exec() {
    let ctx = Ctx::new("fdleakexec", &["sleep", "1000"]);
    ctx.start_ok();
    let out = rt_with_open_fds(
        &ctx,
        "7</etc/hostname",
        &["exec", ctx.id(), "ls", "/proc/self/fd"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
    // The container's init has only its stdio too.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", ctx.pid()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        fds.iter().all(|f| ["0", "1", "2"].contains(&f.as_str())),
        "{fds:?}"
    );
}

#[test]
fn preserve_fds_passes_exactly_those() {
    let ctx = Ctx::new(
        "preservefds",
        &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; cat <&3"],
    );
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let secret = ctx.path("passed");
    std::fs::write(&secret, "through fd 3\n").unwrap();
    let out = rt_with_open_fds(
        &ctx,
        &format!("3<{} 4</etc/hostname", secret.display()),
        &["run", "--preserve-fds", "1", "--bundle", bundle, ctx.id()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // ls opens its own directory as fd 4 once 3 is taken.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 1 2 3 4 \nthrough fd 3\n"
    );
}

/// CVE-2019-5736: a container process grabs the runtime's /proc/PID/exe
/// while the runtime runs inside the container, and once the runtime has
/// exec'd away (the binary is no longer busy) reopens it for writing. The
/// runtime runs from a read-only bind mount (or a sealed memfd), so that
/// write must fail and the host binary stays as it was.
#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    let before = std::fs::read(RUNTIME).unwrap();
    let ctx = Ctx::new("sealed", &["sleep", "1000"]);
    ctx.create_ok();
    let pid = ctx.pid();
    // The waiting init is still vessel-runtime code: take its exe like an attacker.
    let grabbed = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(format!("/proc/{pid}/exe"))
        .unwrap();
    ctx.rt_ok(&["start", ctx.id()]);
    // Wait until the init has exec'd sleep, so the runtime binary is no longer busy.
    for _ in 0..5000 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.to_string_lossy().contains("busybox") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // What the attacker holds must be an unwritable view: a read-only mount
    // (or a sealed memfd, the fallback).
    let on_ro_mount = nix::sys::statvfs::fstatvfs(&grabbed)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    let target = std::fs::read_link(format!("/proc/self/fd/{}", grabbed.as_raw_fd())).unwrap();
    let memfd = target.to_string_lossy().starts_with("/memfd:");
    assert!(
        on_ro_mount || memfd,
        "the runtime ran from a writable file: {}",
        target.display()
    );
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", grabbed.as_raw_fd()));
    let err = reopened.expect_err("the runtime's executable must not be writable");
    // ETXTBSY comes first while other tests still execute the same binary;
    // once nothing does, the read-only mount answers EROFS.
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EPERM) | Some(libc::ETXTBSY)
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read(RUNTIME).unwrap(),
        before,
        "the runtime binary changed"
    );
}

#[test]
fn seccomp_errno_rule() {
    let mut ctx = Ctx::new(
        "seccomp",
        &[
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1; touch /tmp/y && echo touch-ok; grep Seccomp: /proc/self/status",
        ],
    );
    ctx.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let out = ctx.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Operation not permitted"), "{out}");
    assert_eq!(lines[1], "touch-ok", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert!(!ctx.rootfs().join("tmp/x").exists());
    assert!(ctx.rootfs().join("tmp/y").exists());
}

#[test]
fn seccomp_errno_ret_and_exec() {
    let mut ctx = Ctx::new("seccompexec", &["sleep", "1000"]);
    ctx.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    ctx.config["process"]["noNewPrivileges"] = json!(false);
    ctx.start_ok();
    let out = ctx.rt(&["exec", ctx.id(), "sh", "-c", "mkdir /tmp/x 2>&1; echo done"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Permission denied"), "{}", describe(&out));
    assert!(!ctx.rootfs().join("tmp/x").exists());
}

#[test]
fn seccomp_kill_with_an_argument_condition() {
    // linux32 calls personality(PER_LINUX32 = 8); linux64 calls personality(PER_LINUX = 0).
    // Only the first matches the rule's argument condition.
    let mut ctx = Ctx::new(
        "seccompkill",
        &[
            "sh",
            "-c",
            "linux64 true; echo linux64=$?; linux32 true; echo linux32=$?",
        ],
    );
    ctx.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    });
    // Killed by SIGSYS (31): the shell reports 128 + 31.
    assert_eq!(ctx.run_ok(), "linux64=0\nlinux32=159\n");
}

#[test]
fn unknown_syscall_names_are_ignored() {
    // As with runc and libseccomp: profiles such as Docker's name syscalls
    // that not every kernel or architecture has.
    let mut ctx = Ctx::new(
        "seccompunknown",
        &["sh", "-c", "mkdir /tmp/x 2>&1; echo done"],
    );
    ctx.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let out = ctx.run_ok();
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn bad_seccomp_profile_names_the_field() {
    let mut ctx = Ctx::new("seccompbad", &["true"]);
    ctx.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]
    });
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(
        err.contains("linux.seccomp.syscalls[0].action") && err.contains("SCMP_ACT_BOGUS"),
        "{err}"
    );
    ctx.assert_nothing_left(ctx.id());
}
