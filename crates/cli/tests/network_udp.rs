//! A published UDP port (`-p 127.0.0.1:HOSTPORT:PORT/udp`) reaches a UDP
//! server in a container on the default bridge, its answers come back from
//! the host port, and the mapping is released when the container stops.
//! Debian's busybox-static has no `nc -u`, so the server is a tiny static C
//! program the test compiles with gcc and bind-mounts into the busybox
//! container. All traffic stays on loopback and the container's namespace.
//! Needs root.

mod engine_common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use engine_common::{nft_table, Store, IMAGE};

/// Answers each datagram with "echo " and its bytes, and prints
/// "got " and them on stdout.
const ECHO_C: &str = r#"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("udp echo");
        return 1;
    }
    for (;;) {
        char buf[512] = "echo ";
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&peer, &len);
        if (n < 0)
            continue;
        printf("got %.*s\n", (int)n, buf + 5);
        fflush(stdout);
        sendto(s, buf, n + 5, 0, (struct sockaddr *)&peer, len);
    }
}
"#;

fn compile_echo(dir: &Path) {
    std::fs::write(dir.join("echo.c"), ECHO_C).unwrap();
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dir.join("echo"))
        .arg(dir.join("echo.c"))
        .output()
        .expect("gcc is not installed: run scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Send `msg` from `socket` to 127.0.0.1:`port` until an answer comes (the
/// server in the container may not be listening yet when `run -d` returns);
/// the answer and where it came from.
fn ask(socket: &UdpSocket, port: u16, msg: &str) -> (String, SocketAddr) {
    let mut last = None;
    for _ in 0..120 {
        socket
            .send_to(msg.as_bytes(), (Ipv4Addr::LOCALHOST, port))
            .unwrap();
        let mut buf = [0u8; 512];
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => return (String::from_utf8_lossy(&buf[..n]).into_owned(), from),
            Err(e) => last = Some(e),
        }
    }
    panic!("no answer from 127.0.0.1:{port}/udp: {last:?}");
}

#[test]
fn a_published_udp_port_reaches_the_container_and_is_released_on_stop() {
    let store = Store::new();
    let bin = tempfile::tempdir().unwrap();
    compile_echo(bin.path());
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One client socket (one source port) for the whole test, as a real
    // UDP client keeps. Its first datagram goes out before the port is
    // published: the kernel's connection tracking then remembers the flow
    // untranslated, and vessel must make it forget that flow when it
    // publishes the port, or this client would never reach the container.
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    client
        .send_to(b"too early", (Ipv4Addr::LOCALHOST, port))
        .unwrap();
    let mount = format!("{}:/udp:ro", bin.path().display());
    store.ok(&[
        "run",
        "-d",
        "--name",
        "udpecho",
        "-p",
        &format!("127.0.0.1:{port}:5353/udp"),
        "-v",
        &mount,
        IMAGE,
        "/udp/echo",
        "5353",
    ]);
    let mapping = store.ok(&["port", "udpecho", "5353/udp"]);
    assert_eq!(mapping.trim(), format!("127.0.0.1:{port}"), "{mapping}");
    let ps = store.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->5353/udp")), "{ps}");
    // Held for the container while it runs.
    assert!(UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err());

    let (answer, from) = ask(&client, port, "ping-over-udp");
    assert_eq!(answer, "echo ping-over-udp");
    assert_eq!(from, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let logs = store.ok(&["logs", "udpecho"]);
    assert!(logs.contains("got ping-over-udp\n"), "{logs}");

    let id = store.inspect("udpecho", "{{.Id}}");
    assert!(nft_table().contains(&format!("vessel-ctr:{id}")));
    store.ok(&["stop", "-t", "1", "udpecho"]);
    // Released: the host port and the rules.
    drop(UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap());
    assert!(!nft_table().contains(&format!("vessel-ctr:{id}")));

    // Started again (possibly at another address): the same client, whose
    // flow was translated to the old one, reaches it.
    store.ok(&["start", "udpecho"]);
    let (answer, _) = ask(&client, port, "ping-after-restart");
    assert_eq!(answer, "echo ping-after-restart");
    store.ok(&["rm", "-f", "udpecho"]);
}
