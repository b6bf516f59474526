//! Namespaces: new and joined, user namespaces with id mappings, and the
//! console socket of a container with a terminal.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::{describe, status_field, Ctx};
use serde_json::json;

#[test]
fn new_namespaces_differ_from_the_hosts() {
    let ctx = Ctx::new(
        "newns",
        &[
            "sh",
            "-c",
            "echo $$; for n in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; done",
        ],
    );
    let out = ctx.run_ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "not pid 1: {out}");
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            lines.next().unwrap(),
            host.to_str().unwrap(),
            "{ns} is the host's"
        );
    }
}

#[test]
fn without_a_network_namespace_the_host_network_is_shared() {
    let mut ctx = Ctx::new("hostnet", &["readlink", "/proc/self/ns/net"]);
    ctx.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(ctx.run_ok().trim(), host.to_str().unwrap());
}

#[test]
fn join_another_containers_network_namespace() {
    let first = Ctx::new("netns-a", &["sleep", "1000"]);
    first.start_ok();
    let pid = first.pid();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let inside_first = first.exec_ok(&["readlink", "/proc/self/ns/net"]);
    assert_eq!(inside_first.trim(), theirs.to_str().unwrap());

    let mut second = Ctx::new("netns-b", &["readlink", "/proc/self/ns/net"]);
    let nss = second.config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "network");
    nss.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
    assert_eq!(second.run_ok().trim(), theirs.to_str().unwrap());
}

/// Give the rootfs to the host uid/gid that container root maps to.
fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            chown_tree(&p, uid, gid);
        } else {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).unwrap();
        }
    }
}

#[test]
fn user_namespace_with_mappings() {
    let mut ctx = Ctx::new(
        "userns",
        &["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/mine && stat -c %u:%g /tmp/mine; sleep 1000"],
    );
    const HOST: u32 = 100_000;
    ctx.add_namespace(json!({"type": "user"}));
    ctx.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": HOST, "size": 65536}]);
    ctx.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": HOST, "size": 65536}]);
    chown_tree(&ctx.rootfs(), HOST, HOST);
    // A file of the host's root, bind-mounted in.
    let host_file = ctx.path("host-file");
    std::fs::write(&host_file, "host\n").unwrap();
    ctx.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/host-file", "type": "bind", "source": host_file, "options": ["bind"]}),
    );
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let out = ctx.rt(&["run", "-d", "--bundle", bundle, ctx.id()]);
    assert!(out.status.success(), "{}", describe(&out));
    // Seen from the host, the container's root is the mapped uid.
    let pid = ctx.pid();
    Ctx::wait_until("the file the container makes", || {
        ctx.rootfs().join("tmp/mine").exists()
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status_field(&status, "Uid").starts_with(&HOST.to_string()),
        "{status}"
    );
    assert!(
        status_field(&status, "Gid").starts_with(&HOST.to_string()),
        "{status}"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(ctx.rootfs().join("tmp/mine")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (HOST, HOST));

    let log = ctx.exec_ok(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let words: Vec<Vec<&str>> = log
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        words,
        [
            vec!["0"],
            vec!["0"],
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"]
        ],
        "{log}"
    );
    // Root in the container is not root on the host.
    let out = ctx.exec_ok(&[
        "sh",
        "-c",
        "echo x >> /host-file && echo wrote || echo refused",
    ]);
    assert_eq!(out, "refused\n");
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "host\n");
    let host_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_ne!(host_userns, theirs);
}

/// Receive one descriptor sent with SCM_RIGHTS on `stream`.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg on the console socket");
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor in our table.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor received on the console socket");
}

#[test]
fn terminal_through_the_console_socket() {
    let mut ctx = Ctx::new(
        "console",
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo hello from a tty; tty",
        ],
    );
    ctx.config["process"]["terminal"] = json!(true);
    ctx.write_config();
    let sock_path = ctx.path("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        recv_fd(&stream)
    });
    let bundle = ctx.bundle.to_str().unwrap();
    ctx.rt_ok(&[
        "create",
        "--bundle",
        bundle,
        "--console-socket",
        sock_path.to_str().unwrap(),
        ctx.id(),
    ]);
    let master = receiver.join().unwrap();
    ctx.rt_ok(&["start", ctx.id()]);
    let mut master = std::fs::File::from(master);
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            // EIO: the last slave descriptor closed (the program exited).
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&text);
    assert_eq!(text, "hello from a tty\r\n/dev/pts/0\r\n");
}

#[test]
fn terminal_without_console_socket_is_an_error() {
    let mut ctx = Ctx::new("noconsole", &["true"]);
    ctx.config["process"]["terminal"] = json!(true);
    ctx.write_config();
    let err = ctx.rt_err(&["create", "--bundle", ctx.bundle.to_str().unwrap(), ctx.id()]);
    assert!(
        err.contains("process.terminal") && err.contains("--console-socket"),
        "{err}"
    );
    ctx.assert_nothing_left(ctx.id());
    // Detached, nobody would hold the pty: the same error (runc's too).
    let err = ctx.rt_err(&[
        "run",
        "-d",
        "--bundle",
        ctx.bundle.to_str().unwrap(),
        ctx.id(),
    ]);
    assert!(err.contains("--console-socket"), "{err}");
    ctx.assert_nothing_left(ctx.id());
}

#[test]
fn foreground_run_and_exec_with_a_terminal_relay_it_themselves() {
    // As runc: no --console-socket, so vessel-runtime holds the pty and
    // copies it to its own stdout.
    let mut ctx = Ctx::new(
        "ownpty",
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo hello from a tty; tty; exit 5",
        ],
    );
    ctx.config["process"]["terminal"] = json!(true);
    let out = ctx.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "hello from a tty\r\n/dev/pts/0\r\n");
    ctx.assert_nothing_left(ctx.id());
    let leftovers: Vec<_> = std::fs::read_dir(ctx.path("state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftovers
            .iter()
            .any(|n| n.to_string_lossy().starts_with(".console-")),
        "{leftovers:?}"
    );

    // exec -t into a running container (whose own process has no terminal).
    ctx.config["process"]["terminal"] = json!(false);
    ctx.args(&["sleep", "30"]);
    ctx.write_config();
    ctx.rt_ok(&[
        "run",
        "-d",
        "--bundle",
        ctx.bundle.to_str().unwrap(),
        ctx.id(),
    ]);
    let out = ctx.rt(&["exec", "-t", ctx.id(), "sh", "-c", "tty; exit 4"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("/dev/pts/"), "{text}");
    ctx.rt_ok(&["delete", "--force", ctx.id()]);
}
