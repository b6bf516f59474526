//! virtio-vsock end to end: the C guest `virtio_vsock.c` drives the device
//! through its queues while this test is the host side, on the device's
//! Unix sockets as a Firecracker user would be: it listens on
//! `uds_path_5000` for the guest's connection, and connects to `uds_path`
//! with `CONNECT <port>\n` to reach the guest. The guest prints what it
//! saw on COM1; the test checks those lines and the bytes it got.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{build_c_guest, captured, require_kvm, text};
use vessel_vmm::config::devices::VsockConfig;
use vessel_vmm::{run_vm, VmExitReason};

/// Bounds every wait on the guest, so that a broken device fails the test
/// instead of hanging it (the guest runs its CPL0 code emulated here).
const PATIENCE: Duration = Duration::from_secs(300);
/// What the host sends to the guest's port 1234; the guest echoes it
/// uppercased, within a 64-byte credit.
/// The guest's first line to host port 5000.
const PING: &[u8] = b"ping from guest\n";
/// What the guest sends to port 5000 after it: 256 KiB of zeroes, the 64
/// KiB pieces starting with A, B, C, D, the last byte a newline.
const BULK: usize = 256 << 10;
const MESSAGE: &[u8] =
    b"vsock from the host, three hundred bytes of it: the quick brown fox jumps \
over the lazy dog; pack my box with five dozen liquor jugs; how vexingly quick daft zebras jump! \
sphinx of black quartz, judge my vow. 0123456789 and some punctuation: ()[]{}<>. the guest gives \
every byte back in capitals, and the end.";

fn vsock(uds: &Path) -> VsockConfig {
    VsockConfig {
        vsock_id: None,
        guest_cid: 3,
        uds_path: uds.to_owned(),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads until EOF; the bytes, or the error that ended the read early.
fn read_to_eof(stream: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// The guest connects to host port 5000: read its line, answer, and once
/// the guest has sent its bulk bytes and shut down, read them: return
/// what it said and what followed it, up to EOF.
fn serve_guest(
    listener: UnixListener,
    console: &Arc<Mutex<Vec<u8>>>,
    stop: &AtomicBool,
) -> (Vec<u8>, Vec<u8>) {
    listener.set_nonblocking(true).expect("nonblocking");
    let started = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    !stop.load(Ordering::SeqCst) && started.elapsed() < PATIENCE,
                    "the guest never connected to uds_path_5000"
                );
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept on uds_path_5000: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        stream.read_exact(&mut byte).expect("the guest's line");
        line.push(byte[0]);
    }
    stream.write_all(b"pong from host\n").expect("answer");
    // Nothing read until the guest has shut down: the device then still
    // holds what this socket's buffer did not take.
    let sent = format!("vsock: sent {} bytes and shut down\n", PING.len() + BULK);
    wait_for_console(console, &sent, stop);
    let rest = read_to_eof(&mut stream).expect("EOF after the guest's shutdown");
    (line, rest)
}

/// Waits until the guest printed `line`.
fn wait_for_console(console: &Arc<Mutex<Vec<u8>>>, line: &str, stop: &AtomicBool) {
    let started = Instant::now();
    while !text(console).contains(line) {
        assert!(
            !stop.load(Ordering::SeqCst) && started.elapsed() < PATIENCE,
            "the guest never printed {line:?}:\n{}",
            text(console)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn connect(uds: &Path) -> UnixStream {
    let s = UnixStream::connect(uds).expect("connect to uds_path");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s
}

/// What the host side of the guest's port 1234 saw.
#[derive(Debug)]
struct HostToGuest {
    /// Bytes after a line that is not `CONNECT`: none, then EOF.
    after_bad_line: Vec<u8>,
    /// Bytes after `CONNECT 999` (the guest refuses): none, then EOF.
    after_refused: Vec<u8>,
    /// The host port of the accepted connection, from its `OK` line.
    ok_port: u32,
    /// The guest's echo of [`MESSAGE`].
    echo: Vec<u8>,
    /// Bytes after the host shut down its side: none, then EOF.
    after_shutdown: Vec<u8>,
}

fn talk_to_guest(uds: &Path, console: &Arc<Mutex<Vec<u8>>>, stop: &AtomicBool) -> HostToGuest {
    wait_for_console(console, "vsock: listening on 1234\n", stop);
    let mut bad = connect(uds);
    bad.write_all(b"HELLO 1234\n").expect("write");
    let after_bad_line = read_to_eof(&mut bad).expect("EOF after a bad line");

    let mut refused = connect(uds);
    refused.write_all(b"CONNECT 999\n").expect("write");
    let after_refused = read_to_eof(&mut refused).expect("EOF after the guest's RST");

    let mut s = connect(uds);
    // The first bytes for the guest go with the CONNECT line, before the
    // guest accepted: the device must leave them in the socket.
    let (first, rest) = MESSAGE.split_at(40);
    let mut hello = b"CONNECT 1234\n".to_vec();
    hello.extend_from_slice(first);
    s.write_all(&hello).expect("CONNECT");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        s.read_exact(&mut byte).expect("the OK line");
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).expect("utf-8");
    let ok_port = line
        .strip_prefix("OK ")
        .and_then(|p| p.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an OK line: {line:?}"));
    s.write_all(rest).expect("the rest of the message");
    let mut echo = vec![0u8; MESSAGE.len()];
    s.read_exact(&mut echo).expect("the echo");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let after_shutdown = read_to_eof(&mut s).expect("EOF after the guest's RST");
    HostToGuest {
        after_bad_line,
        after_refused,
        ok_port,
        echo,
        after_shutdown,
    }
}

fn expected_bulk() -> Vec<u8> {
    let mut bulk = vec![0u8; BULK];
    for (i, mark) in b"ABCD".iter().enumerate() {
        bulk[i * (64 << 10)] = *mark;
    }
    bulk[BULK - 1] = b'\n';
    bulk
}

fn run_guest(kvm_eventfds: bool) {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_vsock", dir.path());
    let uds = dir.path().join("v.sock");
    let port_5000 = UnixListener::bind(with_suffix(&uds, "_5000")).expect("bind uds_path_5000");
    let (mut config, console) = captured(&kernel);
    config.devices.vsock = Some(vsock(&uds));
    config.devices.kvm_eventfds = kvm_eventfds;

    let stop = Arc::new(AtomicBool::new(false));
    let guest_to_host = {
        let (stop, console) = (stop.clone(), console.clone());
        thread::spawn(move || serve_guest(port_5000, &console, &stop))
    };
    let host_to_guest = {
        let (stop, console, uds) = (stop.clone(), console.clone(), uds.clone());
        thread::spawn(move || talk_to_guest(&uds, &console, &stop))
    };
    let reason = run_vm(config);
    stop.store(true, Ordering::SeqCst);
    let out = text(&console);
    eprintln!("{out}");
    assert_eq!(
        reason.expect("the guest runs"),
        VmExitReason::Reset,
        "{out}"
    );

    let (line, rest) = guest_to_host.join().expect("host side of port 5000");
    assert_eq!(line, PING);
    assert!(
        rest == expected_bulk(),
        "the guest's {BULK} bulk bytes, all of them, then EOF; got {}",
        rest.len()
    );
    let h = host_to_guest.join().expect("host side of port 1234");
    assert!(h.after_bad_line.is_empty(), "{h:?}");
    assert!(h.after_refused.is_empty(), "{h:?}");
    assert!(h.after_shutdown.is_empty(), "{h:?}");
    assert_eq!(h.echo, MESSAGE.to_ascii_uppercase());
    assert!(h.ok_port >= 1 << 30, "{h:?}");

    let forwarded = format!("vsock: host forwarded {}\n", PING.len() + BULK);
    let accepted = format!("vsock: accepting op 1 ports {}->1234\n", h.ok_port);
    let echoed = format!(
        "vsock: host shut down, flags 3, echoed {0}, host counted {0}\n",
        MESSAGE.len()
    );
    for line in [
        "vsock: cid 3\n",
        "vsock: outside chain used len 0\n",
        "vsock: loop chain used len 0\n",
        "vsock: outside rx buffer used len 0\n",
        "vsock: tiny rx buffer used len 0\n",
        "vsock: spoofed cid answered op 3 ports 81->71\n",
        "vsock: huge length answered op 3 ports 82->72\n",
        "vsock: connect 5000 answered op 2 ports 5000->40000\n",
        "vsock: header-only rx buffer used len 0\n",
        "vsock: host says pong from host\n",
        "vsock: shutdown answered op 3 ports 5000->40000\n",
        &forwarded,
        "vsock: connect 5001 answered op 3 ports 5001->40001\n",
        "vsock: listening on 1234\n",
        "vsock: refusing op 1 ports 1073741824->999\n",
        &accepted,
        &echoed,
        "done\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    for bad in ["unexpected", "overran", "nothing came"] {
        assert!(!out.contains(bad), "{bad:?} in:\n{out}");
    }
    assert!(
        !uds.exists(),
        "vessel removes the uds_path it bound when the VM ends"
    );
}

#[test]
fn guest_and_host_connect_both_ways_echo_and_shut_down() {
    run_guest(true);
}

#[test]
fn fallback_without_ioeventfd_and_irqfd_works_the_same() {
    // Notifications arrive as MMIO exits on the vCPU thread and the
    // interrupt is raised with KVM_IRQ_LINE from the device thread.
    run_guest(false);
}

#[test]
fn an_existing_uds_path_is_refused_by_name_before_the_guest_runs() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_vsock", dir.path());
    let uds = dir.path().join("taken.sock");
    std::fs::write(&uds, b"someone else's").expect("file");
    let (mut config, console) = captured(&kernel);
    config.devices.vsock = Some(vsock(&uds));
    let err = run_vm(config).expect_err("uds_path exists");
    let mut chain = err.to_string();
    let mut cur = std::error::Error::source(&err);
    while let Some(e) = cur {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        cur = e.source();
    }
    assert!(
        chain.contains("taken.sock") && chain.contains("already exists"),
        "{chain}"
    );
    assert!(text(&console).is_empty(), "the guest never ran");
    assert_eq!(
        std::fs::read(&uds).expect("still there"),
        b"someone else's",
        "vessel leaves a path it did not create alone"
    );
}
